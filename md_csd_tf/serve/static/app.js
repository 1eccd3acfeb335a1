// The two pages of `md-csd serve`: upload (index.html) and one job (job.html).
//
// Plain JavaScript with no library, so the page works offline. Everything the server sends back
// (file names, messages, errors) is shown with textContent, never as HTML: a file name is
// chosen by whoever uploads it.
"use strict";

const POLL_MS = 700; // between status polls: a scored video takes seconds, so this feels live
const POLL_MAX_MS = 5000; // back-off ceiling while the server cannot be reached (a restart)

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

// The JSON body of a response, or null when it has none (a proxy's HTML error page, say).
async function jsonOf(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}

// The one-line message of a failed response: the server's {"error": ...} when it sent one.
function errorOf(response, body) {
  if (body && typeof body.error === "string" && body.error) {
    return body.error;
  }
  return `The server answered ${response.status} ${response.statusText}`.trim();
}

// The model's name and threshold, from /api/health; null when the server does not answer.
async function health() {
  try {
    const response = await fetch("/api/health", { cache: "no-store" });
    return response.ok ? await jsonOf(response) : null;
  } catch (_) {
    return null;
  }
}

function describeModel(info) {
  if (!info || !info.model) {
    return "";
  }
  const threshold =
    typeof info.threshold === "number" ? `, threshold ${info.threshold.toFixed(4)}` : "";
  return `Model: ${info.model}${threshold}`;
}

// --- upload page -------------------------------------------------------------------------------

function initUpload() {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file");
  const button = document.getElementById("submit");
  const status = document.getElementById("upload-status");
  const error = document.getElementById("upload-error");

  health().then((info) => show(document.getElementById("model"), describeModel(info)));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(error, "");
    if (!input.files || input.files.length === 0) {
      show(error, "Choose a video or an image first.");
      return;
    }
    const file = input.files[0];
    // Checked here too: a server refusing a large body may close the connection before the
    // browser has sent it all, and the page would then see a network error instead of the 413.
    const maxMb = Number(form.dataset.maxUploadMb);
    if (maxMb > 0 && file.size > maxMb * 1024 * 1024) {
      show(error, `The file is larger than the server's ${maxMb} MB limit.`);
      return;
    }
    const data = new FormData();
    data.append("file", file);
    button.disabled = true;
    show(status, `Uploading ${file.name}...`);
    try {
      const response = await fetch("/api/jobs", { method: "POST", body: data });
      const body = await jsonOf(response);
      if (!response.ok || !body || typeof body.id !== "string") {
        show(status, "");
        show(error, response.ok ? "The server's answer holds no job id." : errorOf(response, body));
        return;
      }
      show(status, "Uploaded; opening the job...");
      // Built from the id, not from links.page, so the page only ever navigates within the site.
      window.location.assign(`/jobs/${encodeURIComponent(body.id)}`);
    } catch (_) {
      show(status, "");
      show(error, "The server cannot be reached: is `md-csd serve` still running?");
    } finally {
      button.disabled = false;
    }
  });
}

// --- job page ----------------------------------------------------------------------------------

function percent(progress) {
  const value = Math.min(Math.max(Number(progress) || 0, 0), 1);
  return `${Math.round(value * 100)}%`;
}

// The threshold the verdict used: the job's own when the server sends it, else the model's.
function thresholdOf(job, info) {
  for (const value of [job.threshold, job.result && job.result.threshold, info && info.threshold]) {
    if (typeof value === "number") {
      return value;
    }
  }
  return null;
}

function describeFaces(row) {
  const identities = Array.isArray(row.identities) ? row.identities : [];
  if (identities.length === 0) {
    return "";
  }
  const frames = `${row.frames_scored} of ${row.frames_sampled || row.frames_scored} frames with a face`;
  if (identities.length === 1) {
    return `One face followed; ${frames}.`;
  }
  const decider = row.decided_by === null || row.decided_by === undefined
    ? ""
    : `; the verdict is face #${row.decided_by}'s`;
  return `${identities.length} faces followed${decider}; ${frames}.`;
}

// The verdict's rule, as the detector applies it: strictly above the threshold (a score equal to
// it is real); a video scored by "vote" is fake when more than half its frames are above it.
function describeRule(row, threshold, info) {
  if (threshold === null) {
    return "";
  }
  const t = threshold.toFixed(4);
  if (row.kind === "video" && info && info.aggregate === "vote") {
    return `Fake when more than half the frames have P(fake) above ${t}.`;
  }
  return `Fake when P(fake) is above ${t}.`;
}

function showDone(job, info) {
  const row = job.result || {};
  const verdict = document.getElementById("verdict");
  if (row.error) {
    // A row that failed inside a finished job: shown like a failed job.
    showFailed(job, row.error);
    return;
  }
  const probability =
    typeof row.fake_probability === "number" ? row.fake_probability.toFixed(4) : "n/a";
  verdict.textContent = `${row.verdict} (P(fake) ${probability})`;
  verdict.dataset.verdict = row.verdict || "";
  verdict.dataset.status = job.status;
  show(document.getElementById("threshold"), describeRule(row, thresholdOf(job, info), info));
  show(document.getElementById("faces"), describeFaces(row));
  document.getElementById("result").hidden = false;
  showReport();
}

// Loads the report into the frame, or says why there is none (a report that could not be
// written leaves the verdict standing; the server then answers 404 with a message).
async function showReport() {
  const link = document.getElementById("report-link");
  const frame = document.getElementById("report");
  const url = link.getAttribute("href");
  let response;
  try {
    response = await fetch(url, { method: "HEAD", cache: "no-store" });
  } catch (_) {
    response = null;
  }
  if (response && response.ok) {
    frame.src = url;
    return;
  }
  frame.hidden = true;
  link.hidden = true;
  let message = "The report cannot be loaded.";
  try {
    const answer = await fetch(url, { cache: "no-store" });
    message = errorOf(answer, await jsonOf(answer));
  } catch (_) {
    // the server went away: keep the generic message
  }
  show(document.getElementById("report-missing"), message);
}

function showFailed(job, message) {
  show(document.getElementById("error"), message || "The job failed.");
  const verdict = document.getElementById("verdict");
  verdict.dataset.status = "failed";
  verdict.textContent = "";
}

function initJob() {
  const id = document.body.dataset.jobId;
  const url = `/api/jobs/${encodeURIComponent(id)}`;
  const progress = document.getElementById("progress");
  const status = document.getElementById("status");
  let wait = POLL_MS;

  async function poll() {
    let response;
    let job;
    try {
      response = await fetch(url, { cache: "no-store" });
      job = await jsonOf(response);
    } catch (_) {
      // The server may be restarting: jobs are persisted, so keep asking, more slowly.
      status.textContent = "The server cannot be reached; retrying...";
      wait = Math.min(wait * 2, POLL_MAX_MS);
      setTimeout(poll, wait);
      return;
    }
    wait = POLL_MS;
    if (!response.ok || !job) {
      progress.hidden = true;
      status.textContent = "";
      showFailed({}, errorOf(response, job));
      return;
    }
    if (job.filename) {
      document.getElementById("filename").textContent = job.filename;
      document.title = `md-csd: ${job.filename}`;
    }
    progress.value = Math.min(Math.max(Number(job.progress) || 0, 0), 1);
    // The message adds what the status does not say ("writing the report", a report's failure).
    const message = job.message && job.message !== job.status ? `: ${job.message}` : "";
    status.textContent = `${job.status} ${percent(job.progress)}${message}`;
    if (job.status === "done") {
      progress.value = 1;
      showDone(job, await health());
    } else if (job.status === "failed") {
      showFailed(job, job.error);
    } else {
      setTimeout(poll, wait);
    }
  }

  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "upload") {
    initUpload();
  } else if (document.body.dataset.page === "job") {
    initJob();
  }
});
