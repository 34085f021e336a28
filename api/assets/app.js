// The dashboard's only script (vendored, no libraries). Three jobs:
// 1. forms with data-confirm ask before they act;
// 2. the overview's numbers refresh from /api/v1/queues every 2 s;
// 3. a task page follows the task's Server-Sent Events and moves its
//    progress bar; when the task ends the page reloads to show its clips.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

function refreshOverview(root) {
  fetch("/api/v1/queues", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      if (!data) return;
      const set = (name, value) => {
        const el = root.querySelector(`[data-count="${name}"]`);
        if (el && value !== undefined) el.textContent = value;
      };
      for (const [name, n] of Object.entries(data.tasks || {})) set(name, n);
      // The page shows pending apart from queued (already in Redis).
      if (data.queued !== undefined && data.tasks) {
        set("queued", data.queued);
        set("pending", data.tasks.pending - data.queued);
      }
      set("per_minute", data.completed_last_minute);
      set("per_hour", data.completed_last_hour);
      for (const [queue, n] of Object.entries(data.queues || {})) {
        const el = document.querySelector(`[data-queue="${queue}"]`);
        if (el) el.textContent = n;
      }
    })
    .catch(() => {});
}

function followTask(section) {
  const id = section.dataset.liveTask;
  const bar = document.getElementById("task-progress");
  const percent = document.getElementById("task-percent");
  const step = document.getElementById("task-step");
  const source = new EventSource(`/api/v1/tasks/${encodeURIComponent(id)}/events`);
  let sawChange = false;
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    bar.value = data.progress;
    percent.textContent = `${data.progress}%`;
    step.textContent = data.current_step || "";
    section.dataset.status = data.status;
    document.querySelectorAll("h1 + p [data-status]").forEach((el) => {
      el.textContent = data.status;
      el.className = `status status-${data.status}`;
    });
    sawChange = true;
  });
  source.addEventListener("end", () => {
    source.close();
    section.dataset.ended = "true";
    if (sawChange && section.dataset.final !== "true") window.location.reload();
  });
}

window.addEventListener("DOMContentLoaded", () => {
  const overview = document.querySelector("[data-live-overview]");
  if (overview) setInterval(() => refreshOverview(overview), 2000);
  const task = document.querySelector("[data-live-task]");
  if (task) followTask(task);
});
