// rnnzoo serve: the page. It reads the served runs from GET /api/runs, builds one panel per example family
// from the templates in index.html, and asks the JSON API for every answer (nothing else is fetched).
"use strict";

const $ = (root, selector) => root.querySelector(selector);

/** An element with properties (class, text, title, style, data-*) and children (nodes or text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** GET (no body) or POST a JSON body; the parsed answer, or an Error with the server's message. */
async function api(path, body) {
  const options = body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  let data;
  try { data = await response.json(); } catch { data = {error: `the server answered ${response.status}`}; }
  if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  return data;
}

const fmt = (p, digits = 3) => (p === null || p === undefined) ? "-" : Number(p).toFixed(digits);

/** One probability bar: label, bar, number. */
function barRow(label, value, best = false) {
  return el("div", {class: "bar-row" + (best ? " best" : "")},
    el("span", {text: label}),
    el("span", {class: "bar"}, el("span", {style: {width: `${Math.max(0, Math.min(1, value)) * 100}%`}})),
    el("span", {class: "num", text: fmt(value)}));
}

/** A panel from its template, with a model chooser over `runs` (the runs of one family). */
function makePanel(templateId, runs) {
  const node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
  const select = $(node, "select[name=example]");
  for (const run of runs) select.append(el("option", {value: run.example, text: run.example}));
  const about = () => {
    const run = current();
    $(node, ".about").textContent = `${run.title}. Run ${run.run}, epoch ${run.epoch}` +
      (run.test && run.test[run.metric] !== undefined ? `, test ${run.metric} ${fmt(run.test[run.metric])}` : "") +
      ` (data: ${run.data}).`;
  };
  const current = () => runs.find((r) => r.example === select.value);
  select.addEventListener("change", about);
  about();
  const result = $(node, ".result");
  result.classList.add("empty");
  /** Run `work` with the button disabled; show its error; mark the panel's state for whoever watches. */
  async function busy(button, work) {
    button.disabled = true;
    node.dataset.state = "busy";
    $(node, ".error").textContent = "";
    try {
      await work();
      result.classList.remove("empty");
      node.dataset.state = "done";
    } catch (error) {
      $(node, ".error").textContent = error.message;
      node.dataset.state = "error";
    } finally {
      button.disabled = false;
    }
  }
  return {node, select, current, busy};
}

function showWarnings(list, warnings) {
  list.replaceChildren(...(warnings || []).map((w) => el("li", {text: w})));
}

// --- bAbI ------------------------------------------------------------------------------------------------

/** Attention is one weight per sentence ([{sentence, weight}]), one such list per hop, or null. */
function attentionHops(attention) {
  if (!attention || !attention.length) return [];
  return Array.isArray(attention[0]) ? attention : [attention];
}

function renderAttention(box, attention) {
  const hops = attentionHops(attention);
  if (!hops.length) {
    box.replaceChildren(el("p", {class: "caption", text: "This model shows no attention over the sentences."}));
    return;
  }
  const columns = `${hops.map(() => "56px").join(" ")} 1fr`;
  const header = el("div", {class: "sentence-row", style: {gridTemplateColumns: columns}},
    ...hops.map((_, h) => el("span", {class: "caption", text: hops.length > 1 ? `hop ${h + 1}` : "weight"})),
    el("span", {class: "caption", text: "sentence"}));
  const rows = hops[0].map((s, i) => el("div", {class: "sentence-row", style: {gridTemplateColumns: columns}},
    ...hops.map((hop) => {
      const w = hop[i].weight;
      return el("span", {class: "heat", text: fmt(w, 2), title: `weight ${fmt(w)}`,
        style: {background: `rgba(47, 111, 219, ${Math.min(1, Math.max(0, w))})`, color: w > 0.55 ? "#fff" : "#1d2330"}});
    }),
    el("span", {text: s.sentence})));
  box.replaceChildren(el("h3", {text: "Attention over the story's sentences"}), header, ...rows);
}

function babiPanel(runs) {
  const panel = makePanel("babi-panel", runs);
  const {node} = panel;
  const story = $(node, "[name=story]"), question = $(node, "[name=question]"), truth = $(node, ".truth");
  const ask = $(node, "[name=ask]"), sample = $(node, "[name=sample]");
  const answer = () => panel.busy(ask, async () => {
    const result = await api(`/api/${panel.select.value}/predict`, {story: story.value, question: question.value});
    const shown = $(node, ".answer");
    shown.replaceChildren("Answer: ", el("strong", {text: result.answer}), ` (p = ${fmt(result.probability)})`);
    shown.dataset.answer = result.answer;
    $(node, ".top").replaceChildren(el("h3", {text: `Top ${result.top.length}`}),
      ...result.top.map(([word, p], i) => barRow(word, p, i === 0)));
    renderAttention($(node, ".attention"), result.attention);
    showWarnings($(node, ".warnings"), result.warnings);
  });
  ask.addEventListener("click", answer);
  question.addEventListener("keydown", (e) => { if (e.key === "Enter") answer(); });
  for (const field of [story, question]) field.addEventListener("input", () => { truth.textContent = ""; });
  sample.addEventListener("click", () => panel.busy(sample, async () => {
    const s = await api(`/api/${panel.select.value}/sample`);
    story.value = s.story;
    question.value = s.question;
    truth.textContent = `true answer: ${s.answer} (test story ${s.index + 1} of ${s.count})`;
    await answer();
  }));
  const vocab = runs[0].vocab || [];
  if (vocab.length) story.title = `words this model knows: ${vocab.join(" ")}`;
  return node;
}

// --- IMDB ------------------------------------------------------------------------------------------------

function imdbPanel(runs) {
  const panel = makePanel("imdb-panel", runs);
  const {node} = panel;
  const review = $(node, "[name=review]"), button = $(node, "[name=score]");
  button.addEventListener("click", () => panel.busy(button, async () => {
    const result = await api(`/api/${panel.select.value}/contributions`, {text: review.value});
    const p = result.score.probability;
    const gauge = $(node, ".gauge");
    $(gauge, ".gauge-fill").style.strokeDasharray = `${p} 1`;
    $(gauge, ".gauge-fill").style.stroke = p >= 0.5 ? "rgb(var(--pos))" : "rgb(var(--neg))";
    $(gauge, ".gauge-needle").setAttribute("transform", `rotate(${-90 + 180 * p} 100 100)`);
    $(gauge, ".gauge-value").textContent = fmt(p);
    const label = $(node, ".label");
    label.textContent = `${result.score.label} (p positive = ${fmt(p)})`;
    label.dataset.label = result.score.label;
    const biggest = Math.max(1e-6, ...result.words.map((w) => Math.abs(w.contribution || 0)));
    $(node, ".words").replaceChildren(...result.words.map((w) => {
      const c = w.contribution;
      const shade = c === null ? "transparent" :
        `rgba(var(${c >= 0 ? "--pos" : "--neg"}), ${(0.75 * Math.abs(c) / biggest).toFixed(3)})`;
      const notes = [c === null ? "cut off: the model reads only the last words" : `contribution ${c >= 0 ? "+" : ""}${fmt(c, 4)}`];
      if (w.oov) notes.push("out of the model's vocabulary");
      return el("span", {class: "word" + (w.oov ? " oov" : "") + (w.truncated ? " truncated" : ""), text: w.word,
        title: notes.join("; "), style: {background: shade}}, " ");
    }));
    showWarnings($(node, ".warnings"), result.score.warnings);
  }));
  return node;
}

// --- MNIST -----------------------------------------------------------------------------------------------

/** Draw a (H, W) array of values in [0, 1] as grey pixels, scaled up without smoothing. */
function drawGrey(canvas, frame) {
  const H = frame.length, W = frame[0].length;
  const image = new ImageData(W, H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const v = Math.round(Math.max(0, Math.min(1, frame[y][x])) * 255), k = 4 * (y * W + x);
    image.data[k] = image.data[k + 1] = image.data[k + 2] = v;
    image.data[k + 3] = 255;
  }
  const small = el("canvas", {width: W, height: H});
  small.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function mnistPanel(runs) {
  const panel = makePanel("mnist-panel", runs);
  const {node} = panel;
  const canvas = $(node, "canvas.draw"), ctx = canvas.getContext("2d");
  const button = $(node, "[name=predict]");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  const read = (image) => panel.busy(button, async () => {
    const result = await api(`/api/${panel.select.value}/predict`, {image: image || canvas.toDataURL("image/png")});
    const shown = $(node, ".answer");
    shown.replaceChildren("Digit: ", el("strong", {text: String(result.digit)}), ` (p = ${fmt(result.probability)})`);
    shown.dataset.digit = String(result.digit);
    $(node, ".probabilities").replaceChildren(
      ...result.probabilities.map((p, d) => barRow(String(d), p, d === result.digit)));
    drawGrey($(node, "canvas.seen"), result.seen);
  });
  let drawing = false;
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * canvas.width / box.width, (e.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    Object.assign(ctx, {strokeStyle: "#000", lineWidth: 20, lineCap: "round", lineJoin: "round"});
    ctx.beginPath();
    ctx.moveTo(...at(e));
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  const stop = () => { if (drawing) { drawing = false; read(); } };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  button.addEventListener("click", () => read());
  $(node, "[name=clear]").addEventListener("click", clear);
  $(node, "[name=upload]").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      const picture = new Image();
      picture.onload = () => {  // shown on the canvas, fitted; the file itself is what is sent
        clear();
        const scale = Math.min(canvas.width / picture.width, canvas.height / picture.height);
        ctx.drawImage(picture, (canvas.width - picture.width * scale) / 2, (canvas.height - picture.height * scale) / 2,
          picture.width * scale, picture.height * scale);
      };
      picture.src = reader.result;
      read(reader.result);
    };
    reader.readAsDataURL(file);
  });
  return node;
}

// --- conv_lstm -------------------------------------------------------------------------------------------

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function moviePanel(runs) {
  const panel = makePanel("movie-panel", runs);
  const {node} = panel;
  const movie = $(node, "[name=movie]"), upload = $(node, "[name=upload]"), button = $(node, "[name=run]");
  const setRange = () => {
    const m = panel.current().movies;
    Object.assign(movie, {min: 0, max: m.count - 1, value: m.default,
      title: `test movies ${m.test_start} to ${m.count - 1} (${m.frames} frames of ${m.size}x${m.size})`});
    $(node, "[name=frames]").value = Math.min(7, Math.max(2, Math.floor(m.frames / 2)));
    $(node, "[name=ahead]").value = Math.min(8, m.frames + 1 - $(node, "[name=frames]").value);
  };
  setRange();
  panel.select.addEventListener("change", setRange);
  movie.addEventListener("input", () => { upload.value = ""; });
  let timer = null;
  button.addEventListener("click", () => panel.busy(button, async () => {
    const body = {frames: Number($(node, "[name=frames]").value), ahead: Number($(node, "[name=ahead]").value)};
    if (upload.files[0]) {
      body.upload = await readFile(upload.files[0]);
      body.resize = $(node, "[name=resize]").checked;
    } else body.movie = Number(movie.value);
    const r = await api(`/api/${panel.select.value}/predict`, body);
    const given = r.given.length, total = given + r.predicted.length;
    const s = r.scores;
    const blank = r.given[0].map((row) => row.map(() => 0.5));
    let k = 0;
    const show = () => {
      const ahead = k - given;
      drawGrey($(node, ".true-frame"), k < given ? r.given[k] : (r.true && r.true[ahead]) || blank);
      drawGrey($(node, ".pred-frame"), k < given ? r.given[k] : r.predicted[ahead]);
      $(node, ".frame-label").textContent = k < given ? `frame ${k + 1}: given` :
        `frame ${r.frame_numbers[ahead]}: predicted` + (s && ahead < s.model_iou.length ?
          `, IoU ${fmt(s.model_iou[ahead], 2)} (copy-last ${fmt(s.base_iou[ahead], 2)})` : "");
      k = (k + 1) % total;
    };
    if (timer) clearInterval(timer);
    show();
    // every frame at once, as `rnnzoo predict` draws it: the true movie over the model's, numbers on top
    const strip = $(node, ".strip");
    strip.style.gridTemplateColumns = `70px repeat(${total}, 44px)`;
    const tile = (frame, kind) => {
      const c = el("canvas", {width: frame[0].length, height: frame.length, class: kind});
      drawGrey(c, frame);
      return c;
    };
    const cells = [el("span", {text: ""}), ...Array.from({length: total}, (_, i) => el("span", {text: String(i + 1)}))];
    cells.push(el("span", {text: "true"}), ...r.given.map((f) => tile(f, "given")),
      ...r.predicted.map((_, i) => tile((r.true && r.true[i]) || blank, "ahead true")));
    cells.push(el("span", {text: "predicted"}), ...r.given.map((f) => tile(f, "given")),
      ...r.predicted.map((f) => tile(f, "ahead pred")));
    strip.replaceChildren(...cells);
    timer = setInterval(show, 450);
    const table = $(node, ".scores");
    if (!s) {
      table.replaceChildren(el("tr", {}, el("td", {text: "no true frames after the given ones to score against"})));
    } else {
      const head = el("tr", {}, ...["frame", "IoU model", "IoU copy-last", "BCE model", "BCE copy-last"]
        .map((t) => el("th", {text: t})));
      const rows = s.model_iou.map((_, i) => el("tr", {},
        el("td", {text: String(r.frame_numbers[i])}),
        el("td", {text: fmt(s.model_iou[i]), class: s.model_iou[i] > s.base_iou[i] ? "better" : ""}),
        el("td", {text: fmt(s.base_iou[i])}),
        el("td", {text: fmt(s.model_bce[i], 4), class: s.model_bce[i] < s.base_bce[i] ? "better" : ""}),
        el("td", {text: fmt(s.base_bce[i], 4)})));
      table.replaceChildren(head, ...rows);
    }
    $(node, ".metrics").textContent = `${r.source}. ${r.metrics}.`;
  }));
  return node;
}

// --- runs ------------------------------------------------------------------------------------------------

function runsPanel(runs) {
  const node = document.getElementById("runs-panel").content.firstElementChild.cloneNode(true);
  const head = el("tr", {}, ...["example", "run", "epoch", "test score", "settings"].map((t) => el("th", {text: t})));
  const rows = runs.map((r) => el("tr", {},
    el("td", {text: r.example}),
    el("td", {text: r.run, title: r.path}),
    el("td", {text: String(r.epoch)}),
    el("td", {text: r.test && r.test[r.metric] !== undefined ? `${r.metric} ${fmt(r.test[r.metric], 4)}` : "-"}),
    el("td", {class: "settings", text: Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(" ")})));
  $(node, "table").replaceChildren(head, ...rows);
  return node;
}

async function main() {
  const panels = document.getElementById("panels");
  try {
    const {runs} = await api("/api/runs");
    const groups = {};
    for (const run of runs) (groups[run.group] ||= []).push(run);
    const builders = {"bAbI": babiPanel, "IMDB": imdbPanel, "MNIST": mnistPanel, "moving squares": moviePanel};
    const built = Object.entries(builders).filter(([group]) => groups[group]).map(([group, build]) => build(groups[group]));
    if (!runs.length) built.push(el("p", {text: "No runs are served."}));
    panels.replaceChildren(...built, runsPanel(runs));
  } catch (error) {
    panels.replaceChildren(el("p", {class: "error", text: `Cannot read the runs: ${error.message}`}));
  }
  document.body.dataset.ready = "1";
}

main();
