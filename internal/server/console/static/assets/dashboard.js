// dashboard.js: who is signed in, the jobs and the newest sessions.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const content = document.getElementById("content");
  content.append(
    HF.section(
      "Signed in",
      HF.el("p", { id: "signed-in" }, "Signed in as ", HF.el("strong", {}, me.name), ", role ", HF.roleName(me.role), ".")
    )
  );
  const [jobs, sessions] = await Promise.all([HF.api("GET", "/jobs"), HF.api("GET", "/sessions?limit=10")]);
  content.append(
    HF.section(
      "Jobs",
      HF.table(
        "Jobs",
        [
          { title: "Name", value: (j) => j.name },
          { title: "Kind", value: (j) => j.kind },
          { title: "Schedule", value: (j) => j.schedule || "on demand" },
          { title: "Enabled", value: (j) => (j.enabled ? "yes" : "no") },
          { title: "Last run", value: (j) => (j.last_run ? j.last_run.state : "never") },
          { title: "Next run", value: (j) => HF.fmtTime(j.next_run) },
        ],
        jobs,
        "No jobs yet."
      )
    ),
    HF.section(
      "Recent sessions",
      HF.table(
        "The ten newest sessions",
        [
          { title: "Session", value: (s) => s.id },
          { title: "Job", value: (s) => s.job_name || "–" },
          { title: "Kind", value: (s) => s.kind },
          { title: "State", value: (s) => s.state },
          { title: "Started", value: (s) => HF.fmtTime(s.started) },
          { title: "Ended", value: (s) => HF.fmtTime(s.ended) },
        ],
        sessions,
        "No sessions yet."
      )
    )
  );
})().catch((err) => window.Holdfast.fail(err));
