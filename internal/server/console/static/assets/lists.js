// lists.js: the list pages (jobs, infrastructure, users), one table per
// API list. The page's name is the body's data-page.
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
    infrastructure: [
      {
        title: "Agents",
        path: "/agents",
        empty: "No proxies or repositories have joined yet.",
        columns: [
          ["Name", (a) => a.name],
          ["Role", (a) => a.role],
          ["Address", (a) => a.address || "–"],
          ["Slots", (a) => a.slots],
          ["Last heartbeat", (a) => t(a.last_heartbeat)],
        ],
      },
      {
        title: "Sources",
        path: "/sources",
        empty: "No sources yet.",
        columns: [
          ["Name", (s) => s.name],
          ["Kind", (s) => s.kind],
        ],
      },
    ],
    users: [
      {
        title: "Users",
        path: "/users",
        empty: "No console users.",
        columns: [
          ["Name", (u) => u.name],
          ["Role", (u) => HF.roleName(u.role)],
          ["TOTP", (u) => (u.totp ? "yes" : "no")],
          ["Last login", (u) => t(u.last_login)],
          ["Locked until", (u) => t(u.locked_until)],
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
