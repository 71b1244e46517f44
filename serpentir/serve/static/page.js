// The page: pick a task and a photo, upload it as a job, poll the job for progress, show and offer the result.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, name: "", beforeUrl: null, afterUrl: null, models: [] };

function show(el, visible) { el.hidden = !visible; }

function setError(message) {
  $("error").textContent = message || "";
  show($("error"), Boolean(message));
}

function setProgress(text, fraction) {
  show($("progress-box"), true);
  $("status").textContent = text;
  const bar = $("progress");
  if (fraction === null || fraction === undefined) bar.removeAttribute("value"); // indeterminate
  else bar.value = Math.max(0, Math.min(1, fraction));
}

function megapixels(n) { return (n / 1e6).toFixed(1).replace(/\.0$/, "") + " megapixels"; }
function megabytes(n) { return (n / 1048576).toFixed(1).replace(/\.0$/, "") + " MB"; }

async function errorText(response) {
  try { return (await response.json()).error || response.statusText; } catch { return response.statusText; }
}

async function loadModels() {
  const response = await fetch("/api/models");
  const body = await response.json();
  state.models = body.models;
  const select = $("task");
  for (const m of body.models.filter((x) => !x.needs_mask)) {
    const option = new Option(m.task + (m.default ? " (default)" : ""), m.task, m.default, m.default);
    select.add(option);
  }
  // a task that needs a mask (inpaint) is not offered: the page has no way to paint one
  const masked = body.models.filter((x) => x.needs_mask).map((x) => x.task);
  $("mask-tasks").textContent = masked.length ?
    `Not offered here: ${masked.join(", ")}, which needs a mask of the region to fill (serpentir restore --mask).` : "";
  show($("mask-tasks"), masked.length > 0);
  describeTask();
}

function describeTask() {
  const m = state.models.find((x) => x.task === $("task").value);
  $("task-description").textContent = m ? `${m.description}. Model ${m.model}, ${m.weights}.` : "";
}

async function loadSamples() {
  const body = await (await fetch("/api/samples")).json();
  for (const name of body.samples) $("sample").add(new Option(name, name));
  const status = await (await fetch("/api/status")).json();
  $("limits").textContent = `Up to ${megabytes(status.max_upload_bytes)} and ${megapixels(status.max_pixels)}; ` +
    `PNG, JPEG, TIFF, BMP or WebP. Your photo is kept only until it is restored.`;
}

function choose(blob, name) {
  state.file = blob;
  state.name = name;
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = URL.createObjectURL(blob);
  $("chosen").textContent = `${name} (${megabytes(blob.size)})`;
  show($("chosen"), true);
  $("restore").disabled = false;
  setError("");
}

async function chooseSample() {
  const photo = $("sample").value;
  if (!photo) return;
  const task = $("task").value;
  const response = await fetch(`/api/samples/${encodeURIComponent(photo)}.png?task=${encodeURIComponent(task)}`);
  if (!response.ok) { setError(await errorText(response)); return; }
  choose(await response.blob(), `${photo}-${task}.png`);
}

function upload(url, blob) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setProgress(`Uploading ${Math.round(100 * e.loaded / e.total)}%`, e.loaded / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader("Retry-After") });
    };
    xhr.onerror = () => reject(new Error("the server could not be reached"));
    xhr.send(blob);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function restore() {
  if (!state.file) return;
  $("restore").disabled = true;
  delete document.body.dataset.result;
  setError("");
  const task = $("task").value;
  try {
    const url = `/api/jobs?task=${encodeURIComponent(task)}&name=${encodeURIComponent(state.name)}`;
    const answer = await upload(url, state.file);
    if (answer.status === 503) throw new Error(`The server is busy; try again in ${answer.retryAfter || "a few"} s.`);
    if (answer.status !== 202) throw new Error(answer.body.error || `upload failed (HTTP ${answer.status})`);
    let job = answer.body;
    while (job.state === "queued" || job.state === "running") {
      if (job.state === "queued") setProgress(`Waiting: ${job.position} ahead`, 0);
      else if (job.estimate_s) setProgress(`Restoring… ${job.elapsed_s.toFixed(1)} s of about ${job.estimate_s.toFixed(1)} s`, Math.min(0.97, job.elapsed_s / job.estimate_s));
      else setProgress(`Restoring… ${(job.elapsed_s || 0).toFixed(1)} s (loading the ${task} model on first use)`, null);
      await sleep(250);
      const response = await fetch(`/api/jobs/${job.id}`);
      if (!response.ok) throw new Error(await errorText(response));
      job = await response.json();
    }
    if (job.state !== "done") throw new Error(job.error || "restoration failed");
    const result = await fetch(job.result);
    if (!result.ok) throw new Error(await errorText(result));
    showResult(await result.blob(), job);
  } catch (e) {
    show($("progress-box"), false);
    setError(e.message);
  } finally {
    $("restore").disabled = false;
  }
}

function showResult(blob, job) {
  if (state.afterUrl) URL.revokeObjectURL(state.afterUrl);
  state.afterUrl = URL.createObjectURL(blob);
  for (const id of ["before-img", "before-side"]) $(id).src = state.beforeUrl;
  for (const id of ["after-img", "after-side"]) $(id).src = state.afterUrl;
  const link = $("download");
  link.href = state.afterUrl;
  link.download = state.name.replace(/\.[^.]*$/, "") + "-restored.png";
  link.setAttribute("aria-disabled", "false");
  setProgress(`Restored ${job.width}x${job.height} with ${job.task} in ${job.elapsed_s.toFixed(1)} s`, 1);
  show($("viewer"), true);
  document.body.dataset.result = "ready"; // for scripts and tests: the result is on the page
}

function setSplit(percent) {
  $("after-img").style.clipPath = `inset(0 0 0 ${percent}%)`;
  $("divider").style.left = `${percent}%`;
}

function setMode(slider) {
  $("mode-slider").setAttribute("aria-pressed", String(slider));
  $("mode-side").setAttribute("aria-pressed", String(!slider));
  show($("compare"), slider);
  show($("side"), !slider);
}

function apiHelp() {
  const origin = window.location.origin;
  $("api-help").textContent =
    `# restore (default task), the result as PNG:\n` +
    `curl --data-binary @photo.png -o restored.png ${origin}/api/restore\n` +
    `# another bundled model:\n` +
    `curl --data-binary @noisy.png -o restored.png '${origin}/api/restore?task=denoise'\n` +
    `# the bundled models:\n` +
    `curl ${origin}/api/models\n` +
    `# a bad upload gets a 4xx with {"error": "..."}; a full queue gets 503 with Retry-After.`;
}

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) choose(file, file.name);
  });
}

window.addEventListener("DOMContentLoaded", () => {
  $("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) choose(f, f.name); });
  $("sample").addEventListener("change", chooseSample);
  $("task").addEventListener("change", () => { describeTask(); if ($("sample").value && state.name.startsWith($("sample").value + "-")) chooseSample(); });
  $("restore").addEventListener("click", restore);
  $("split").addEventListener("input", (e) => setSplit(e.target.value));
  $("mode-slider").addEventListener("click", () => setMode(true));
  $("mode-side").addEventListener("click", () => setMode(false));
  wireDrop();
  apiHelp();
  Promise.all([loadModels(), loadSamples()]).catch((e) => setError(`cannot reach the server: ${e.message}`));
});
