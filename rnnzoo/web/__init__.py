"""`rnnzoo serve`: the trained examples as a local web app, one page over a JSON API (rnnzoo.web.app).

The page is plain HTML, CSS and JavaScript shipped in the package (rnnzoo/web/static): no build step and
nothing fetched from elsewhere, so it works offline. Starlette and uvicorn come with the `web` extra
(`pip install 'rnnzoo[web]'`); nothing else in rnnzoo imports this package.
"""
