// anycost serve: the page. Talks to the JSON API of anycost/app/server.py; no build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  model: null,
  seed: 0,
  latent: null, // id of a projected upload, or null for a sample
  strengths: {},
  preview: null, // {resolution, ratio}
};
let generation = 0; // bumped on (re)connect and when the session is dropped: stale poll loops stop
let reconnecting = null;
let connectError = null; // why the latest attempt to open a session failed
let sending = false;
let dirty = false;
const previewTimes = [];
const SLIDER_STEPS = 100; // an edit slider moves in steps of limit / SLIDER_STEPS

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, contentType) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = contentType || "application/json";
    init.body = contentType ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached: is `anycost serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || `${method} ${path} failed: HTTP ${response.status}`);
  }
  return data;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

const gmacs = (value) => (value >= 1 ? value.toFixed(2) : value.toFixed(3));

function costOf(resolution, ratio) {
  return state.model.costs.find((c) => c.resolution === resolution && c.ratio === ratio);
}

// -- session ------------------------------------------------------------------------------------
async function connect() {
  const created = await api("POST", "/api/sessions", {});
  state.session = created.session;
  if (!state.model) {
    state.model = created.model;
    buildControls(created.model);
  }
  state.latent = null; // uploads belong to the old session
  markUploadActive(false);
  const thumb = $("upload-thumb");
  if (thumb.dataset.latent) {
    delete thumb.dataset.latent;
    thumb.hidden = true;
    $("upload-status").textContent = "the server closed the old session: upload your image again";
  }
  generation += 1;
  poll(generation);
  requestEdit();
}

function reconnect() {
  if (!reconnecting) {
    reconnecting = connect()
      .then(() => {
        connectError = null;
      })
      .catch((err) => {
        connectError = err;
        showError(err.message);
      })
      .finally(() => {
        reconnecting = null;
      });
  }
  return reconnecting;
}

// The server closed the session (410: idle too long, or its place went to another page). A new one is opened
// on the next edit or upload, not at once: pages beyond the server's limit would otherwise take turns closing
// each other's sessions.
function dropSession() {
  state.session = null;
  generation += 1;
}

// The open session, opened anew first if it was dropped; throws if none can be opened.
async function currentSession() {
  if (!state.session) await reconnect();
  if (!state.session) throw connectError || new ApiError(0, "no session could be opened: reload the page");
  return state.session;
}

const sessionGone = (err) => err.status === 404 || err.status === 410;

async function poll(gen) {
  let after = 0;
  while (gen === generation) {
    try {
      const reply = await api("GET", `/api/sessions/${state.session}/render?after=${after}`);
      if (gen !== generation) return;
      if (reply.render) {
        after = reply.render.seq;
        show(reply.render);
      }
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 410) {
        dropSession();
        return;
      }
      if (err.status === 404) {
        showError(`${err.message} (reconnecting)`); // the server restarted
        reconnect();
        return;
      }
      showError(err.message);
      await sleep(1000);
    }
  }
}

// -- edits: at most one request in flight, always the newest state -----------------------------
function requestEdit() {
  dirty = true;
  if (!state.session) reconnect(); // connect() requests the edit once the new session is open
  else if (!sending) sendEdits();
}

async function sendEdits() {
  sending = true;
  while (dirty && state.session) {
    dirty = false;
    const strengths = {};
    for (const [name, value] of Object.entries(state.strengths)) if (value !== 0) strengths[name] = value;
    const body = { strengths, preview: state.preview };
    if (state.latent) body.latent = state.latent;
    else body.seed = state.seed;
    try {
      await api("POST", `/api/sessions/${state.session}/edit`, body);
      showError("");
    } catch (err) {
      if (sessionGone(err)) {
        sending = false;
        dropSession();
        reconnect(); // resends the newest state
        return;
      }
      showError(err.message);
    }
  }
  sending = false;
}

function show(render) {
  if (render.kind === "error") {
    showError(render.error);
    return;
  }
  const view = $("view");
  view.src = render.image;
  view.dataset.kind = render.kind;
  view.dataset.request = String(render.request);
  view.dataset.ms = String(render.ms);
  const badge = $("kind-badge");
  badge.textContent = render.kind;
  badge.className = `badge ${render.kind}`;
  $("view-detail").textContent =
    `${render.kind} of request ${render.request}: ${render.resolution} px, ${gmacs(render.gmacs)} GMACs, ` +
    `${render.ms.toFixed(1)} ms`;
  $(`${render.kind}-ms`).textContent = `${render.ms.toFixed(1)} ms`;
  $(`${render.kind}-info`).textContent = `${render.resolution} px · ${gmacs(render.gmacs)} GMACs`;
  if (render.kind === "preview") {
    const now = performance.now();
    previewTimes.push(now);
    while (previewTimes.length && now - previewTimes[0] > 1000) previewTimes.shift();
    if (previewTimes.length >= 3) {
      const rate = ((previewTimes.length - 1) * 1000) / (now - previewTimes[0]);
      $("preview-rate").textContent = rate.toFixed(0);
    }
  }
}

// -- controls -----------------------------------------------------------------------------------
function slider(container, id, label, attrs, onInput) {
  const row = document.createElement("div");
  row.className = "slider";
  const name = document.createElement("label");
  name.htmlFor = id;
  name.textContent = label.replace(/_/g, " ").replace(/:/g, ": ");
  name.title = label;
  const input = document.createElement("input");
  input.type = "range";
  input.id = id;
  Object.assign(input, attrs);
  const output = document.createElement("output");
  output.htmlFor = id;
  output.id = `${id}-value`;
  row.append(name, input, output);
  container.append(row);
  input.addEventListener("input", () => onInput(input, output));
  onInput(input, output, true);
  return input;
}

function buildControls(model) {
  $("model-source").textContent = `${model.source} · ${model.resolution} px`;
  $("full-gmacs").textContent = gmacs(model.full_gmacs);
  $("idle-ms").textContent = String(model.idle_ms);
  $("seed").max = String(model.max_seed);

  const edits = $("edits");
  $("no-edits").hidden = model.directions.length > 0;
  $("reset-edits").hidden = model.directions.length === 0;
  for (const direction of model.directions) {
    state.strengths[direction.name] = 0;
    const input = slider(
      edits,
      `edit-${direction.name.replace(/[^A-Za-z0-9_-]/g, "_")}`,
      direction.name,
      { min: -SLIDER_STEPS, max: SLIDER_STEPS, step: 1, value: 0 },
      (el, out, initial) => {
        const value = Number(((Number(el.value) / SLIDER_STEPS) * direction.limit).toFixed(2)); // sent as shown
        out.value = `${value > 0 ? "+" : ""}${value.toFixed(2)}`;
        state.strengths[direction.name] = value;
        if (!initial) requestEdit();
      },
    );
    input.addEventListener("dblclick", () => {
      input.value = 0;
      input.dispatchEvent(new Event("input"));
    });
  }
  $("reset-edits").addEventListener("click", () => {
    for (const input of edits.querySelectorAll("input")) input.value = 0;
    for (const name of Object.keys(state.strengths)) state.strengths[name] = 0;
    for (const out of edits.querySelectorAll("output")) out.value = "0.00";
    requestEdit();
  });

  const resolutions = [...new Set(model.costs.map((c) => c.resolution))].sort((a, b) => a - b);
  const ratios = [...new Set(model.costs.map((c) => c.ratio))].sort((a, b) => a - b);
  state.preview = { ...model.preview };
  const resolutionInput = $("preview-resolution");
  const ratioInput = $("preview-ratio");
  resolutionInput.max = String(resolutions.length - 1);
  resolutionInput.value = String(resolutions.indexOf(model.preview.resolution));
  ratioInput.max = String(ratios.length - 1);
  ratioInput.value = String(ratios.indexOf(model.preview.ratio));
  const updateCost = (send) => {
    state.preview = { resolution: resolutions[Number(resolutionInput.value)], ratio: ratios[Number(ratioInput.value)] };
    $("preview-resolution-value").value = `${state.preview.resolution} px`;
    $("preview-ratio-value").value = `× ${state.preview.ratio}`;
    const cost = costOf(state.preview.resolution, state.preview.ratio);
    $("preview-gmacs").textContent = gmacs(cost.gmacs);
    $("preview-share").textContent = `${((100 * cost.gmacs) / model.full_gmacs).toFixed(0)} %`;
    if (send) requestEdit();
  };
  resolutionInput.addEventListener("input", () => updateCost(true));
  ratioInput.addEventListener("input", () => updateCost(true));
  updateCost(false);

  const seedInput = $("seed");
  const setSeed = (seed) => {
    state.seed = Math.max(0, Math.min(model.max_seed, Math.floor(seed) || 0));
    seedInput.value = String(state.seed);
    state.latent = null;
    markUploadActive(false);
    requestEdit();
  };
  seedInput.addEventListener("change", () => setSeed(Number(seedInput.value)));
  $("prev-seed").addEventListener("click", () => setSeed(state.seed - 1));
  $("next-seed").addEventListener("click", () => setSeed(state.seed + 1));
  $("random-seed").addEventListener("click", () => setSeed(Math.random() * 100000));

  const uploadInput = $("upload");
  if (!model.upload.available) {
    uploadInput.disabled = true;
    $("upload-status").textContent = `uploads are off: ${model.upload.reason}`;
  }
  uploadInput.addEventListener("change", () => {
    if (uploadInput.files.length) upload(uploadInput.files[0]);
    uploadInput.value = "";
  });
  $("upload-thumb").addEventListener("click", () => {
    if (!$("upload-thumb").dataset.latent) return;
    state.latent = $("upload-thumb").dataset.latent;
    markUploadActive(true);
    requestEdit();
  });
}

// -- uploads ------------------------------------------------------------------------------------
function markUploadActive(active) {
  $("upload-thumb").classList.toggle("active", active);
}

async function upload(file) {
  const status = $("upload-status");
  const bar = $("upload-progress");
  const thumb = $("upload-thumb");
  const limit = state.model.upload.max_bytes;
  if (file.size > limit) {
    showError(`"${file.name}" is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ${limit / 2 ** 20} MB.`);
    return;
  }
  delete thumb.dataset.latent;
  $("upload-thumb-image").src = URL.createObjectURL(file);
  thumb.hidden = false;
  markUploadActive(false);
  status.textContent = "uploading…";
  const type = file.type || "application/octet-stream";
  const send = (session) => api("POST", `/api/sessions/${session}/uploads`, file, type);
  try {
    let session = await currentSession();
    let job;
    try {
      job = await send(session);
    } catch (err) {
      if (!sessionGone(err)) throw err;
      dropSession(); // closed since the last poll noticed: upload to a new session
      session = await currentSession();
      job = await send(session);
    }
    bar.hidden = false;
    while (job.status === "queued" || job.status === "projecting") {
      status.textContent = job.status === "queued" ? "waiting for the projector…" : `projecting: step ${job.step} of ${job.steps}`;
      bar.value = job.step / job.steps;
      await sleep(250);
      if (session !== state.session) throw new ApiError(404, "the session changed: upload again");
      job = await api("GET", `/api/sessions/${session}/uploads/${job.latent}`);
    }
    if (job.status !== "ready") throw new ApiError(500, job.error || "the projection failed");
    status.textContent = "projected: the edits now apply to your image";
    thumb.dataset.latent = job.latent;
    state.latent = job.latent;
    markUploadActive(true);
    requestEdit();
  } catch (err) {
    status.textContent = "upload failed";
    thumb.hidden = true;
    if (err.status === 410) dropSession(); // closed while projecting: the next action opens a new one
    showError(err.message);
  } finally {
    bar.hidden = true;
  }
}

window.addEventListener("pagehide", () => {
  if (state.session) fetch(`/api/sessions/${state.session}`, { method: "DELETE", keepalive: true });
});

reconnect();
