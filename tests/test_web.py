"""`rnnzoo serve`: the JSON API through starlette's TestClient, the server on a real socket under concurrent
requests, and the page in a real headless Chromium (skipped only where no browser is installed).

RNNZOO_SCREENSHOTS=<folder> makes the browser test also write one screenshot per panel there (the README's
pictures); RNNZOO_SCREENSHOT_RUNS=<runs folder> serves the latest runs of that folder instead of tiny ones.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

import rnnzoo
from rnnzoo.cli import build_parser, main

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'rnnzoo[web]'")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx (the dev extra)")

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 there; httpx is what pip resolves
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from rnnzoo.web import server  # noqa: E402
from rnnzoo.web.app import create_app  # noqa: E402
from rnnzoo.web.inputs import Limits  # noqa: E402

SERVED = ("babi_memnn", "babi_rnn", "imdb_lstm", "mnist_hierarchical_rnn", "conv_lstm")
STORY = "Mary moved to the bathroom. John went to the hallway."


def quiet_train(example: str, folder: Path) -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return rnnzoo.train(example, preset="tiny", run_dir=folder, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny run of each example family (both bAbI models), trained once for the module."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("web-runs")
    return {name: quiet_train(name, root / name / "run") for name in SERVED}


@pytest.fixture(scope="module")
def client(runs: dict[str, Any]) -> TestClient:
    return TestClient(create_app(list(runs.values())))


def png_url(image: Image.Image, kind: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def one_stroke() -> Image.Image:
    """A '1' drawn as on the page's canvas: a black stroke on white."""
    image = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(image).line((140, 40, 140, 240), fill="black", width=20)
    return image


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


# --- the API, one example family at a time -----------------------------------------------------------------


def test_runs_lists_each_served_run_with_its_settings_and_test_score(client: TestClient, runs: dict) -> None:
    served = {r["example"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(served) == set(SERVED)
    memnn = served["babi_memnn"]
    assert memnn["group"] == "bAbI" and memnn["run"] == "run" and memnn["epoch"] == runs["babi_memnn"].epoch
    assert memnn["settings"]["embedding_dim"] == 8 and memnn["test"] == runs["babi_memnn"].test
    assert memnn["test_stories"] > 0 and "Mary" in memnn["vocab"]
    assert served["conv_lstm"]["movies"] == {"test_start": 10, "count": 14, "frames": 6, "size": 12, "default": 10}
    assert served["imdb_lstm"]["maxlen"] == 12


def test_babi_predict_answers_as_the_python_api_with_attention_per_sentence(client: TestClient, runs: dict) -> None:
    answer = client.post("/api/babi_memnn/predict", json={"story": STORY, "question": "Where is Mary?"}).json()
    expected = runs["babi_memnn"].predict(STORY, "Where is Mary?").to_dict()
    assert answer == json.loads(json.dumps(expected))
    assert len(answer["top"]) == 3 and [a["sentence"] for a in answer["attention"]] == [
        "Mary moved to the bathroom .", "John went to the hallway ."]
    rnn = client.post("/api/babi_rnn/predict", json={"story": STORY, "question": "Where is Mary?", "top_k": 2}).json()
    assert rnn["attention"] is None and len(rnn["top"]) == 2


def test_babi_sample_gives_the_runs_own_test_stories(client: TestClient, runs: dict) -> None:
    run = runs["babi_memnn"]
    stories = run.example.test_stories(run.config, run.checkpoint["seed"])
    data = run.example.load_data(run.config, run.checkpoint["seed"])
    assert len(stories) == len(data.test)  # the same questions as the run's test split
    word_idx = {w: i + 1 for i, w in enumerate(run.meta["vocab"])}
    assert [word_idx[a] for _, _, a in stories] == data.test.target.tolist()
    sample = client.get("/api/babi_memnn/sample?index=1").json()
    story, question, answer = stories[1]
    assert sample == {"index": 1, "count": len(stories), "story": " ".join(story).replace(" .", "."),
                      "question": " ".join(question).replace(" ?", "?"), "answer": answer}
    assert client.post("/api/babi_memnn/predict", json={"story": sample["story"],
                                                         "question": sample["question"]}).status_code == 200
    assert 0 <= client.get("/api/babi_memnn/sample").json()["index"] < len(stories)
    assert error_of(client.get("/api/babi_memnn/sample?index=9999"), 400).startswith("no test story 9999")
    assert "whole number" in error_of(client.get("/api/babi_memnn/sample?index=-1"), 400)
    assert "bAbI" in error_of(client.get("/api/imdb_lstm/sample"), 404)


def test_imdb_predict_and_word_contributions_are_leave_one_out_probabilities(client: TestClient, runs: dict) -> None:
    run = runs["imdb_lstm"]
    text = "Great film, zqxv wonderful acting! The plot was dull and the ending awful, a waste of time really."
    score = client.post("/api/imdb_lstm/predict", json={"text": text}).json()
    assert score == json.loads(json.dumps(run.predict(text).to_dict()))
    assert len(client.post("/api/imdb_lstm/predict", json={"texts": [text, "great"]}).json()) == 2
    result = client.post("/api/imdb_lstm/contributions", json={"text": text}).json()
    words = result["words"]
    assert [w["word"] for w in words] == score["words"] and result["score"]["probability"] == score["probability"]
    cut = len(score["truncated"])
    assert cut > 0 and all(w["truncated"] and w["contribution"] is None for w in words[:cut])
    assert [w["word"] for w in words if w["oov"]] == ["zqxv"] * ("zqxv" not in run.meta["vocab"])
    for i in (cut, len(words) - 1):  # the review without word i, typed again, scores p - contribution
        without = " ".join(w["word"] for k, w in enumerate(words) if k != i)
        assert run.predict(without).probability == pytest.approx(score["probability"] - words[i]["contribution"],
                                                                 abs=1e-5)


def test_mnist_predict_reads_a_png_data_url_and_returns_what_the_model_saw(client: TestClient, runs: dict,
                                                                            tmp_path: Path) -> None:
    image = one_stroke()
    result = client.post("/api/mnist_hierarchical_rnn/predict", json={"image": png_url(image)}).json()
    image.save(tmp_path / "one.png")
    expected = runs["mnist_hierarchical_rnn"].predict(tmp_path / "one.png")
    assert result["digit"] == expected.digit and result["probabilities"] == pytest.approx(expected.probabilities,
                                                                                          abs=1e-6)
    seen = np.array(result["seen"])
    assert seen.shape == (28, 28) and seen.max() == pytest.approx(1.0) and seen[0].max() == 0  # light on dark
    clear = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # a drawing on a transparent canvas
    ImageDraw.Draw(clear).line((100, 30, 100, 170), fill=(0, 0, 0, 255), width=16)
    assert client.post("/api/mnist_hierarchical_rnn/predict", json={"image": png_url(clear)}).json()["digit"] in \
        range(10)


def test_conv_lstm_predict_continues_a_test_movie_or_an_uploaded_one(client: TestClient) -> None:
    result = client.post("/api/conv_lstm/predict", json={"movie": 11, "frames": 3, "ahead": 2}).json()
    assert result["movie"] == 11 and np.array(result["given"]).shape == (3, 12, 12)
    assert np.array(result["predicted"]).shape == np.array(result["true"]).shape == (2, 12, 12)
    assert result["frame_numbers"] == [4, 5] and len(result["scores"]["model_iou"]) == 2
    frames = np.zeros((5, 12, 12), np.float32)
    for t in range(5):
        frames[t, 4:7, 2 + t:5 + t] = 1.0
    npy = io.BytesIO()
    np.save(npy, frames)
    upload = "data:application/octet-stream;base64," + base64.b64encode(npy.getvalue()).decode()
    own = client.post("/api/conv_lstm/predict", json={"upload": upload, "frames": 3}).json()
    assert own["movie"] is None and np.array(own["true"]) == pytest.approx(frames[3:5])
    gif = io.BytesIO()
    pictures = [Image.fromarray((f * 255).astype(np.uint8)).resize((24, 24)) for f in frames]
    pictures[0].save(gif, "GIF", save_all=True, append_images=pictures[1:])
    url = "data:image/gif;base64," + base64.b64encode(gif.getvalue()).decode()
    assert "12x12" in error_of(client.post("/api/conv_lstm/predict", json={"upload": url}), 400)
    assert len(client.post("/api/conv_lstm/predict", json={"upload": url, "resize": True}).json()["given"]) == 2


# --- bad input: a 4xx JSON error with the Python API's (and so the command line's) message --------------------


def test_bad_input_gets_a_4xx_json_error_with_the_input_errors_message(client: TestClient, runs: dict) -> None:
    predict = "/api/babi_memnn/predict"
    assert error_of(client.post(predict, content=b'{"story": '), 400).startswith("the request body is not valid JSON")
    assert error_of(client.post(predict, content=b"\xff\xfe"), 400).startswith("the request body is not UTF-8")
    assert error_of(client.post(predict, json=["a"]), 400) == "the request body must be a JSON object, got a JSON array"
    assert error_of(client.post(predict, json={"story": 3, "question": "Where is Mary?"}), 400) == \
        "story must be text, got a JSON number"
    assert error_of(client.post(predict, json={"stroy": STORY, "question": "Where is Mary?"}), 400).startswith(
        "unknown field 'stroy' (did you mean 'story'?)")
    assert error_of(client.post(predict, json={"story": STORY}), 400) == "missing field question; give story, question"
    with pytest.raises(rnnzoo.InputError) as raised:  # the same words the command line prints
        runs["babi_memnn"].predict("The unicorn moved to the bathroom.", "Where is Mary?")
    assert error_of(client.post(predict, json={"story": "The unicorn moved to the bathroom.",
                                               "question": "Where is Mary?"}), 400) == str(raised.value)
    with pytest.raises(rnnzoo.InputError) as raised:
        runs["imdb_lstm"].predict("  ")
    assert error_of(client.post("/api/imdb_lstm/predict", json={"text": "  "}), 400) == str(raised.value)
    assert error_of(client.post("/api/imdb_lstm/predict", json={"texts": ["good", 3]}), 400).startswith(
        "texts must hold review text")
    mnist = "/api/mnist_hierarchical_rnn/predict"
    assert error_of(client.post(mnist, json={"image": "data:image/png;base64,aGVsbG8="}), 400).startswith(
        "the image is not a picture Pillow can read")
    assert error_of(client.post(mnist, json={"image": "data:image/png;base64,@@@"}), 400) == \
        "image is not valid base64"
    assert "base64 data URL" in error_of(client.post(mnist, json={"image": "/etc/passwd"}), 400)
    blank = png_url(Image.new("L", (50, 50), 255))
    assert error_of(client.post(mnist, json={"image": blank}), 400) == \
        "the image array: the image is blank (no digit stands out from the background)"
    assert error_of(client.post("/api/conv_lstm/predict", json={"movie": 99}), 400).startswith("no movie 99")
    assert error_of(client.post("/api/conv_lstm/predict", json={"movie": True}), 400) == \
        "movie must be a whole number, got a JSON boolean"
    assert error_of(client.post("/api/conv_lstm/predict", json={"upload": "data:x;base64,AAAA"}), 400).startswith(
        "cannot read the upload as a movie: give an animated GIF or a .npy array")


def test_unknown_examples_and_examples_without_a_run_are_404(client: TestClient) -> None:
    assert error_of(client.post("/api/babi_memn/predict", json={}), 404).startswith(
        "unknown example 'babi_memn' (did you mean 'babi_memnn'?); choose from babi_memnn, babi_rnn")
    assert error_of(client.post("/api/imdb_cnn_lstm/predict", json={"text": "good"}), 404).startswith(
        "no run of imdb_cnn_lstm is served here")
    assert error_of(client.post("/api/..%2F..%2Fetc/predict", json={}), 404).startswith("no page /api/../../etc")
    assert error_of(client.get("/static/..%2Fapp.py"), 404).startswith("no page /static/../app.py")
    assert error_of(client.get("/static/server.py"), 404) == "no file 'server.py' here"
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert error_of(client.get("/api/nothing"), 404).startswith("no page /api/nothing")
    assert error_of(client.get("/api/babi_memnn/predict"), 405) == "GET is not allowed on /api/babi_memnn/predict"
    assert "IMDB" in error_of(client.post("/api/babi_memnn/contributions", json={"text": "x"}), 404)


def test_size_limits_answer_413(runs: dict) -> None:
    limits = Limits(body_bytes=2000, upload_bytes=6000, story_chars=300, review_chars=200, reviews=3,
                    image_pixels=100 * 100, movie_pixels=4 * 12 * 12)
    small = TestClient(create_app(list(runs.values()), limits))
    assert "at most 2,000" in error_of(small.post("/api/imdb_lstm/predict", content=b"x" * 2001), 413)
    assert "at most 200 are accepted" in error_of(small.post("/api/imdb_lstm/predict", json={"text": "good " * 41}),
                                                  413)
    assert "at most 3" in error_of(small.post("/api/imdb_lstm/predict", json={"texts": ["good"] * 4}), 413)
    assert "story has 305 characters; at most 300" in error_of(
        small.post("/api/babi_memnn/predict", json={"story": "Mary." * 61, "question": "Where is Mary?"}), 413)
    big = png_url(Image.new("L", (101, 100), 255))
    assert error_of(small.post("/api/mnist_hierarchical_rnn/predict", json={"image": big}), 413) == \
        "the image has 101x100 pixels; at most 10,000 pixels are accepted"
    npy = io.BytesIO()
    np.save(npy, np.zeros((5, 12, 12), np.float32))
    upload = "data:application/octet-stream;base64," + base64.b64encode(npy.getvalue()).decode()
    assert "more than 576 pixels" in error_of(small.post("/api/conv_lstm/predict", json={"upload": upload}), 413)
    chunks = iter([b'{"text": "', b"a" * 3000, b'"}'])  # no content-length: counted as it streams
    assert "larger than 2,000 bytes" in error_of(small.post("/api/imdb_lstm/predict", content=chunks), 413)


# --- the command -----------------------------------------------------------------------------------------------


def test_serve_parser_binds_loopback_by_default_and_warns_for_another_host(runs: dict, monkeypatch,
                                                                           capsys) -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.quick, args.runs) == ("127.0.0.1", 8000, False, [])
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.update(kw))
    assert main(["serve", str(runs["babi_rnn"].path), "--host", "0.0.0.0", "--port", "8123"]) == 0
    assert started == {"host": "0.0.0.0", "port": 8123, "log_level": "warning"}
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err and "serving babi_rnn" in err
    assert main(["serve", str(runs["babi_rnn"].path)]) == 0 and "warning" not in capsys.readouterr().err
    assert main(["serve", str(runs["babi_rnn"].path), str(runs["babi_rnn"].path)]) == 2
    assert "two runs of babi_rnn" in capsys.readouterr().err


def test_serve_without_the_web_extra_names_the_pip_command(monkeypatch, capsys) -> None:
    real = server.importlib.util.find_spec
    monkeypatch.setattr(server.importlib.util, "find_spec", lambda name: None if name == "uvicorn" else real(name))
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == "rnnzoo: error: rnnzoo serve needs uvicorn: pip install 'rnnzoo[web]'\n"


def test_serve_finds_the_latest_runs_and_quick_trains_the_missing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RNNZOO_RUNS", str(tmp_path / "runs"))
    assert main(["serve"]) == 2 and "no trained runs under" in capsys.readouterr().err
    monkeypatch.setattr(server, "QUICK_PRESETS", {"babi_rnn": "tiny"})  # the quick presets take a minute or two
    loaded = server.load_runs([], quick=True)
    assert [r.name for r in loaded] == ["babi_rnn"] and (tmp_path / "runs" / "babi_rnn").is_dir()
    assert [r.path for r in server.load_runs([], quick=True)] == [loaded[0].path]  # nothing trained again
    assert set(server.QUICK_PRESETS) <= set(rnnzoo.api.CARDS)


def test_quick_presets_use_generated_data() -> None:
    from rnnzoo.specs.settings import CARDS

    for name, preset in server.QUICK_PRESETS.items():
        assert CARDS[name].presets[preset].generated or name == "conv_lstm", name  # conv_lstm's movies are drawn


# --- a real socket: concurrent requests --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url(runs: dict[str, Any]) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread; stopped at the end."""
    import uvicorn

    app = create_app(server_runs(runs), workers=2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv.should_exit = True
    thread.join(10)
    sock.close()


def server_runs(runs: dict[str, Any]) -> list[Any]:
    """The tiny runs, or with RNNZOO_SCREENSHOT_RUNS the latest runs of that folder (for the README pictures)."""
    folder = os.environ.get("RNNZOO_SCREENSHOT_RUNS")
    if not folder:
        return list(runs.values())
    from rnnzoo.runs import list_runs, load_run

    latest = {info.example: info.path for info in list_runs(Path(folder))}
    return [load_run(path) for path in latest.values()]


def test_concurrent_requests_get_the_answers_of_sequential_ones(live_url: str) -> None:
    import httpx

    texts = [f"the film was {w} and the acting {v}" for w in ("great", "dull", "superb", "awful")
             for v in ("poor", "wonderful")]
    with httpx.Client(base_url=live_url, timeout=30) as http:
        alone = [http.post("/api/imdb_lstm/predict", json={"text": t}).json()["probability"] for t in texts]

        def ask(k: int) -> tuple[int, float]:
            text = texts[k % len(texts)]
            return k, http.post("/api/imdb_lstm/predict", json={"text": text}).json()["probability"]

        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, range(64)))
    assert all(p == alone[k % len(texts)] for k, p in together)


# --- the page in a real browser ------------------------------------------------------------------------------------


def chromium() -> tuple[str, str] | None:
    """The paths of a Chromium (or Chrome) and its chromedriver, or None."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    found = chromium()
    if found is None:
        pytest.skip("no browser installed: the page test needs chromium and chromedriver (Debian: apt-get install "
                    "chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the page test needs selenium (the dev extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1100,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=found[1]))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the page did not get there in time")


def test_the_page_answers_a_story_reads_a_drawn_digit_and_shows_every_panel(browser: Any, live_url: str,
                                                                           tmp_path: Path) -> None:
    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    shots = [tmp_path / "screenshots"]
    if os.environ.get("RNNZOO_SCREENSHOTS"):
        shots.append(Path(os.environ["RNNZOO_SCREENSHOTS"]))
    for folder in shots:
        folder.mkdir(parents=True, exist_ok=True)

    def shoot(panel: Any, name: str) -> None:
        browser.execute_script("arguments[0].scrollIntoView()", panel)
        for folder in shots:
            panel.screenshot(str(folder / f"serve_{name}.png"))

    def done(panel: Any) -> bool:
        state = panel.get_attribute("data-state")
        assert state != "error", panel.find_element(By.CSS_SELECTOR, ".error").text
        return state == "done"

    browser.get(live_url + "/")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")

    # bAbI: type a story and a question, read the answer the page shows
    babi = browser.find_element(By.ID, "panel-babi")
    story, question = "Sandra went to the garden. Mary moved to the kitchen.", "Where is Sandra?"
    babi.find_element(By.NAME, "story").send_keys(story)
    babi.find_element(By.NAME, "question").send_keys(question)
    babi.find_element(By.NAME, "ask").click()
    wait_for(lambda: done(babi))
    shown = babi.find_element(By.CSS_SELECTOR, ".answer")
    example = babi.find_element(By.NAME, "example").get_attribute("value")
    expected = httpx.post(f"{live_url}/api/{example}/predict", json={"story": story, "question": question}).json()
    assert shown.get_attribute("data-answer") == expected["answer"] and expected["answer"] in shown.text
    rows = babi.find_elements(By.CSS_SELECTOR, ".attention .sentence-row")
    assert [r.text.split("\n")[-1] for r in rows[1:]] == ["Sandra went to the garden .", "Mary moved to the kitchen ."]
    hops = browser.execute_script(  # a model with attention per hop (memn2n) gives one list of weights per hop
        "const box = document.createElement('div');"
        "renderAttention(box, [[{sentence: 'Mary moved .', weight: 0.9}, {sentence: 'John went .', weight: 0.1}],"
        "                      [{sentence: 'Mary moved .', weight: 0.3}, {sentence: 'John went .', weight: 0.7}]]);"
        "return [...box.querySelectorAll('.sentence-row')].map(r => [...r.children].map(c => c.textContent));")
    assert hops == [["hop 1", "hop 2", "sentence"], ["0.90", "0.30", "Mary moved ."], ["0.10", "0.70", "John went ."]]
    babi.find_element(By.NAME, "sample").click()  # a random test story, answered
    wait_for(lambda: "true answer:" in babi.find_element(By.CSS_SELECTOR, ".truth").text and done(babi))
    shoot(babi, "babi")

    # MNIST: draw a digit on the canvas with the mouse; the prediction appears when the stroke ends
    mnist = browser.find_element(By.ID, "panel-mnist")
    canvas = mnist.find_element(By.CSS_SELECTOR, "canvas.draw")
    browser.execute_script("arguments[0].scrollIntoView()", canvas)
    strokes = ActionChains(browser).move_to_element_with_offset(canvas, -60, -90).click_and_hold()
    for dx, dy in ((60, 0), (60, 0), (-30, 60), (-30, 60), (-20, 60)):  # a 7
        strokes.move_by_offset(dx, dy)
    strokes.release().perform()
    wait_for(lambda: done(mnist))
    digit = mnist.find_element(By.CSS_SELECTOR, ".answer").get_attribute("data-digit")
    assert digit in [str(d) for d in range(10)]
    assert len(mnist.find_elements(By.CSS_SELECTOR, ".probabilities .bar-row")) == 10
    lit = browser.execute_script("const c = arguments[0].getContext('2d').getImageData(0, 0, 112, 112).data;"
                                 "let n = 0; for (let i = 0; i < c.length; i += 4) n += c[i] > 128; return n;",
                                 mnist.find_element(By.CSS_SELECTOR, "canvas.seen"))
    assert lit > 50  # the 28x28 input the model saw, drawn light on dark
    shoot(mnist, "mnist")

    # IMDB: type a review; the gauge and the shaded words appear
    imdb = browser.find_element(By.ID, "panel-imdb")
    imdb.find_element(By.NAME, "review").send_keys("A wonderful, moving film with superb acting; zqxv the plot "
                                                   "was never dull and the ending was great.")
    imdb.find_element(By.NAME, "score").click()
    wait_for(lambda: done(imdb))
    assert imdb.find_element(By.CSS_SELECTOR, ".label").get_attribute("data-label") in ("positive", "negative")
    words = imdb.find_elements(By.CSS_SELECTOR, ".words .word")
    maxlen = next(r["maxlen"] for r in httpx.get(f"{live_url}/api/runs").json()["runs"] if r["group"] == "IMDB")
    cut = imdb.find_elements(By.CSS_SELECTOR, ".words .word.truncated")
    assert len(words) == 18 and len(cut) == max(0, 18 - maxlen)  # the tiny runs read the last 12 words
    assert "zqxv" in [w.text for w in imdb.find_elements(By.CSS_SELECTOR, ".words .word.oov")]
    shoot(imdb, "imdb")

    # conv_lstm: the default test movie, animated true and predicted frames with per-frame scores
    movie = browser.find_element(By.ID, "panel-movie")
    movie.find_element(By.NAME, "run").click()
    wait_for(lambda: done(movie))
    ahead = int(movie.find_element(By.NAME, "ahead").get_attribute("value"))
    assert len(movie.find_elements(By.CSS_SELECTOR, ".scores tr")) == 1 + ahead
    assert len(movie.find_elements(By.CSS_SELECTOR, ".strip canvas.ahead.pred")) == ahead
    label = movie.find_element(By.CSS_SELECTOR, ".frame-label")
    given = int(movie.find_element(By.NAME, "frames").get_attribute("value"))
    wait_for(lambda: label.text.startswith(f"frame {given + 3}: predicted, IoU"))  # the animation, ahead
    shoot(movie, "conv_lstm")

    runs_panel = browser.find_element(By.ID, "panel-runs")
    assert len(runs_panel.find_elements(By.CSS_SELECTOR, "tr")) == 1 + len(httpx.get(f"{live_url}/api/runs").json()[
        "runs"])
    shoot(runs_panel, "runs")
    assert all((shots[0] / f"serve_{n}.png").stat().st_size > 1000 for n in ("babi", "mnist", "imdb", "conv_lstm"))
