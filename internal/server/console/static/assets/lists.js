// lists.js: the list pages (jobs, sessions, restore points), one table
// per API list. The page's name is the
// body's data-page.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const t = HF.fmtTime;
  const lists = {
    jobs: [
      {
        title: "Jobs",
        path: "/jobs",
        empty: "No jobs yet.",
        columns: [
          ["Name", (j) => j.name],
          ["Kind", (j) => j.kind],
          ["Schedule", (j) => j.schedule || "on demand"],
          ["Enabled", (j) => (j.enabled ? "yes" : "no")],
          ["Last run", (j) => (j.last_run ? j.last_run.state : "never")],
          ["Next run", (j) => t(j.next_run)],
        ],
      },
    ],
    sessions: [
      {
        title: "Sessions",
        path: "/sessions?limit=100",
        empty: "No sessions yet.",
        columns: [
          ["Session", (s) => s.id],
          ["Job", (s) => s.job_name || "–"],
          ["Kind", (s) => s.kind],
          ["State", (s) => s.state],
          ["Started", (s) => t(s.started)],
          ["Ended", (s) => t(s.ended)],
        ],
      },
    ],
    points: [
      {
        title: "Restore points",
        path: "/points?limit=100",
        empty: "No restore points yet.",
        columns: [
          ["VM", (p) => p.vm],
          ["Time", (p) => t(p.time)],
          ["Job", (p) => p.job || "–"],
          ["Repository", (p) => p.repository],
          ["Scan", (p) => (p.scan ? p.scan.result : "–")],
          ["ID", (p) => p.id],
        ],
      },
    ],
  };
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const content = document.getElementById("content");
  for (const l of lists[document.body.dataset.page] || []) {
    const rows = await HF.api("GET", l.path);
    const columns = l.columns.map(([title, value]) => ({ title: title, value: value }));
    content.append(HF.section(l.title, HF.table(l.title, columns, rows, l.empty)));
  }
})().catch((err) => window.Holdfast.fail(err));
