"""The web app: one page (rnnzoo/web/static) over a JSON API that mirrors the Python API.

    GET  /api/runs                        the served runs: example, folder, epoch, test score, settings
    POST /api/<example>/predict           run.predict(...) with the JSON body's fields; the result's to_dict()
    POST /api/<example>/contributions     IMDB: each word's leave-one-out change in probability
    GET  /api/<example>/sample[?index=N]  bAbI: a test story and question of the run's data (random without N)

Only the runs the app was built with answer; nothing in a request names a file. A mistake in a request
(malformed JSON, a field of the wrong type, an unknown word, an undecodable image, an unknown example) is
answered with a 4xx status and `{"error": <message>}`, the message the command line prints for it.
Inference runs in worker threads under `torch.inference_mode`, at most `workers` at a time; the runs are
read-only once loaded, so requests share no mutable state.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import anyio
import torch
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rnnzoo.errors import DataError, InputError, TooLarge
from rnnzoo.runs import Run
from rnnzoo.specs.settings import CARDS, did_you_mean
from rnnzoo.web import inputs
from rnnzoo.web.inputs import Limits, check_fields, check_length, decode_data_url, parse_object

log = logging.getLogger("rnnzoo.web")
DEFAULT_LIMITS = Limits()
STATIC = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


class NotFound(InputError):
    """A request for an example that is unknown or has no run here (status 404)."""


@dataclasses.dataclass(frozen=True)
class Served:
    """One served run and what the page needs to know of it, computed once when the app is built."""

    run: Run
    info: dict[str, Any]
    stories: tuple[tuple[str, str, str], ...]  # bAbI: the test (story, question, answer) texts; else empty


def story_text(words: Sequence[str]) -> str:
    """Tokens back to text: 'Mary moved to the bathroom .' -> 'Mary moved to the bathroom.'"""
    return re.sub(r" ([.?!,;:])", r"\1", " ".join(words))


def describe(run: Run) -> Served:
    """The facts /api/runs gives about `run`, and its test stories for a bAbI run."""
    card = run.example.card
    info: dict[str, Any] = {
        "example": run.name, "title": card.title, "group": card.predict_group, "run": run.path.name,
        "path": str(run.path.resolve()), "epoch": run.epoch, "metric": card.metric, "test": run.test,
        "settings": dataclasses.asdict(run.config), "data": run.meta.get("source", run.meta.get("task", card.data)),
    }
    stories: tuple[tuple[str, str, str], ...] = ()
    if card.predict_group == "bAbI":
        info["vocab"] = list(run.meta["vocab"])
        test_stories = getattr(run.example, "test_stories", None)
        try:
            found = test_stories(run.config, int(run.checkpoint.get("seed", 0))) if test_stories else []
            stories = tuple((story_text(s), story_text(q), a) for s, q, a in found)
        except DataError as e:
            info["stories_missing"] = str(e)
        info["test_stories"] = len(stories)
    elif card.predict_group == "IMDB":
        info["maxlen"] = run.meta["maxlen"]
    elif card.predict_group == "moving squares":
        meta = run.meta
        info["movies"] = {"test_start": meta.get("test_start", meta["train_movies"]), "count": meta["movies"],
                          "frames": meta["frames"], "size": meta["size"],
                          "default": run.example.default_movie(meta)}  # type: ignore[attr-defined]
    return Served(run, info, stories)


# --- answering one request (in a worker thread) -------------------------------------------------------------


def predict_babi(served: Served, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    check_fields(body, {"story": (str,), "question": (str,), "top_k": (int,)}, required=("story", "question"))
    check_length(body["story"], limits.story_chars, "story")
    check_length(body["question"], limits.story_chars, "question")
    top_k = body.get("top_k", 3)
    if not 1 <= top_k <= 20:
        raise InputError(f"top_k must be 1 to 20, got {top_k}")
    return served.run.predict(body["story"], body["question"], top_k=top_k).to_dict()


def _reviews(body: dict[str, Any], limits: Limits) -> str | list[str]:
    check_fields(body, {"text": (str,), "texts": (list,)})
    if ("text" in body) == ("texts" in body):
        raise InputError('give one review as "text" or a list of reviews as "texts"')
    texts = body["texts"] if "texts" in body else [body["text"]]
    if len(texts) > limits.reviews:
        raise TooLarge(f"{len(texts)} reviews; at most {limits.reviews} are accepted a request")
    for n, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise InputError(f"texts must hold review text, got a {type(text).__name__} as review {n}")
        check_length(text, limits.review_chars, "review" if "text" in body else f"review {n}")
    return body["text"] if "text" in body else texts


def predict_imdb(served: Served, body: dict[str, Any], limits: Limits) -> Any:
    result = served.run.predict(_reviews(body, limits))
    return [r.to_dict() for r in result] if isinstance(result, list) else result.to_dict()


def contributions_imdb(served: Served, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    check_fields(body, {"text": (str,)}, required=("text",))
    text = _reviews(body, limits)
    run = served.run
    return run.example.word_contributions(run.model, run.meta, text).to_dict()  # type: ignore[attr-defined]


def predict_mnist(served: Served, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    check_fields(body, {"image": (str,)}, required=("image",))
    grey = inputs.read_image(decode_data_url(body["image"], "image", limits.upload_bytes), limits.image_pixels)
    result = served.run.predict(grey)  # the decoded grey picture, as a numpy array
    result.source = "image"
    return result.to_dict()


def predict_movie(served: Served, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    check_fields(body, {"movie": (int,), "upload": (str,), "frames": (int,), "ahead": (int,), "resize": (bool,)})
    if "movie" in body and "upload" in body:
        raise InputError('give a generated movie\'s number as "movie" or a movie of your own as "upload", not both')
    movie: Any = body.get("movie")
    if "upload" in body:
        movie = inputs.read_movie(decode_data_url(body["upload"], "upload", limits.upload_bytes), limits.movie_pixels)
    result = served.run.predict(movie, body.get("frames"), body.get("ahead"), resize=body.get("resize", False))
    return result.to_dict()


PREDICT: dict[str, Callable[[Served, dict[str, Any], Limits], Any]] = {
    "bAbI": predict_babi, "IMDB": predict_imdb, "MNIST": predict_mnist, "moving squares": predict_movie}


# --- the app --------------------------------------------------------------------------------------------------


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(runs: Sequence[Run], limits: Limits = DEFAULT_LIMITS, workers: int = 2) -> Starlette:
    """The app serving `runs` (one per example) with `limits` on requests and at most `workers` inferences
    at a time."""
    served: dict[str, Served] = {}
    for run in runs:
        if run.name in served:
            raise InputError(f"two runs of {run.name} given ({served[run.name].run.path} and {run.path}); serve one "
                             "run per example")
        served[run.name] = describe(run)
    static = {name: (resources.files("rnnzoo.web").joinpath("static", name).read_bytes(), kind)
              for name, kind in STATIC.items()}
    limiter: list[anyio.CapacityLimiter] = []  # made on the first request, inside the event loop

    def lookup(example: str) -> Served:
        if example not in CARDS:
            raise NotFound(f"unknown example {example!r}{did_you_mean(example, CARDS)}; choose from "
                           f"{', '.join(CARDS)}")
        if example not in served:
            raise NotFound(f"no run of {example} is served here (served: {', '.join(served) or 'none'}); train one "
                           f"with: rnnzoo train {example} --preset tiny, then restart rnnzoo serve")
        return served[example]

    async def read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"the request body has {int(declared):,} bytes; at most {limit:,} are accepted")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the request body is larger than {limit:,} bytes, the most accepted")
            chunks.append(chunk)
        return b"".join(chunks)

    async def infer(fn: Callable[..., Any], *args: Any) -> Any:
        if not limiter:
            limiter.append(anyio.CapacityLimiter(workers))

        def call() -> Any:
            with torch.inference_mode():
                return fn(*args)

        return await anyio.to_thread.run_sync(call, limiter=limiter[0])

    async def page(request: Request) -> Response:
        return Response(static["index.html"][0], media_type="text/html; charset=utf-8")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static or name == "index.html":
            return error(404, f"no file {name!r} here")
        content, kind = static[name]
        return Response(content, media_type=f"{kind}; charset=utf-8")

    async def list_served(request: Request) -> Response:
        return JSONResponse({"runs": [s.info for s in served.values()]})

    async def predict(request: Request) -> Response:
        s = lookup(request.path_params["example"])
        group = s.run.example.card.predict_group
        big = group in ("MNIST", "moving squares")
        body = parse_object(await read_body(request, limits.upload_bytes if big else limits.body_bytes))
        return JSONResponse(await infer(PREDICT[group], s, body, limits))

    async def contributions(request: Request) -> Response:
        s = lookup(request.path_params["example"])
        if s.run.example.card.predict_group != "IMDB":
            raise NotFound(f"{s.run.name} has no word contributions; they are for the IMDB examples")
        body = parse_object(await read_body(request, limits.body_bytes))
        return JSONResponse(await infer(contributions_imdb, s, body, limits))

    async def sample(request: Request) -> Response:
        s = lookup(request.path_params["example"])
        if s.run.example.card.predict_group != "bAbI":
            raise NotFound(f"{s.run.name} has no test stories; they are for the bAbI examples")
        if not s.stories:
            why = s.info.get("stories_missing", "the test set is empty")
            raise NotFound(f"no test stories for {s.run.name}: {why}")
        given = request.query_params.get("index")
        if given is not None and not given.isdigit():
            raise InputError(f"index must be a whole number from 0 to {len(s.stories) - 1}, got {given!r}")
        index = int(given) if given is not None else random.randrange(len(s.stories))
        if index >= len(s.stories):
            raise InputError(f"no test story {index}: {s.run.name}'s test set has stories 0 to {len(s.stories) - 1}")
        story, question, answer = s.stories[index]
        return JSONResponse({"index": index, "count": len(s.stories), "story": story, "question": question,
                             "answer": answer})

    async def input_error(request: Request, exc: Exception) -> Response:
        status = 413 if isinstance(exc, TooLarge) else 404 if isinstance(exc, NotFound) else 400
        return error(status, str(exc))

    async def data_error(request: Request, exc: Exception) -> Response:
        return error(503, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        text = {404: f"no page {request.url.path}; the API is under /api/ (GET /api/runs, POST "
                     "/api/<example>/predict)",
                405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return error(exc.status_code, text)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("error answering %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error: the server could not answer this request (its log has the details)")

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/api/runs", list_served),
        Route("/api/{example}/predict", predict, methods=["POST"]),
        Route("/api/{example}/contributions", contributions, methods=["POST"]),
        Route("/api/{example}/sample", sample),
    ]
    return Starlette(routes=routes, exception_handlers={
        InputError: input_error, DataError: data_error, HTTPException: http_error, Exception: server_error})
