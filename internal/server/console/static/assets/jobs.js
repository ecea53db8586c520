// jobs.js: the Jobs page. The list (name, kind, enabled, schedule, next
// run, last result) with the actions the user's role may use (run, stop,
// enable/disable, edit, delete), and the create/edit wizard: VMs from
// sources (GET /sources/{name}/vms), repository, schedule with its next
// runs (GET /schedule/preview), retention, guest processing, throttle.
// The API's validation is the one validation: the wizard sends the job and
// shows the API's error next to the step it names.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  // The API's backup permission (internal/server/api routes.go).
  const canBackup = me.role === "administrator" || me.role === "backup_operator";
  const content = document.getElementById("content");
  const listArea = el("div", { id: "job-list" });
  const wizardArea = el("div", { id: "job-wizard-area" });
  const toolbar = el("p", { class: "toolbar" });
  if (canBackup) {
    const add = el("button", { type: "button", id: "job-new" }, "New job");
    add.addEventListener("click", () => openWizard(null));
    toolbar.append(add);
  }
  content.append(HF.section("Jobs", toolbar, listArea), wizardArea);

  const active = (state) => state === "queued" || state === "running";
  let pollTimer = 0;

  // ---- the list ----

  function actionButton(label, job, handler, attrs) {
    const b = el("button", Object.assign({ type: "button", class: "small", "data-action": label.toLowerCase(),
      "aria-label": label + " " + job.name }, attrs || {}), label);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await handler();
      } catch (err) {
        HF.fail(err);
      }
      await refresh();
    });
    return b;
  }

  function actions(j) {
    const cell = el("div", { class: "actions" });
    if (!canBackup) {
      return cell;
    }
    const path = "/jobs/" + encodeURIComponent(j.name);
    const running = j.last_run && active(j.last_run.state);
    if (running) {
      cell.append(actionButton("Stop", j, async () => {
        await HF.api("POST", "/sessions/" + j.last_run.session + "/cancel");
        HF.status("Stopping session " + j.last_run.session + " of " + j.name + ".");
      }));
    } else {
      cell.append(actionButton("Run", j, async () => {
        const se = await HF.api("POST", path + "/run");
        HF.status("Job " + j.name + " queued as session " + (se && se.id) + ".");
      }));
    }
    cell.append(j.enabled
      ? actionButton("Disable", j, () => HF.api("POST", path + "/disable"), { class: "small secondary" })
      : actionButton("Enable", j, () => HF.api("POST", path + "/enable"), { class: "small secondary" }));
    if (j.kind === "backup") {
      const edit = el("button", { type: "button", class: "small secondary", "data-action": "edit", "aria-label": "Edit " + j.name }, "Edit");
      edit.addEventListener("click", () => openWizard(j));
      cell.append(edit);
    }
    const del = el("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": "Delete " + j.name }, "Delete");
    del.addEventListener("click", () => {
      // Confirm in the page (no blocking dialog): the row offers the
      // confirmation with focus on it.
      const ask = el("span", { class: "confirm", role: "group", "aria-label": "Confirm deleting " + j.name },
        "Delete " + j.name + "? ");
      const yes = actionButton("Confirm delete", j, async () => {
        await HF.api("DELETE", path);
        HF.status("Job " + j.name + " deleted.");
      }, { class: "small danger", "data-action": "confirm-delete" });
      const no = el("button", { type: "button", class: "small secondary" }, "Cancel");
      no.addEventListener("click", () => {
        ask.remove();
        del.hidden = false;
        del.focus();
      });
      ask.append(yes, " ", no);
      del.hidden = true;
      cell.append(ask);
      yes.focus();
    });
    cell.append(del);
    return cell;
  }

  function lastResult(j) {
    if (!j.last_run) {
      return "never run";
    }
    const r = j.last_run;
    const span = el("span", { class: "state state-" + r.state }, r.state);
    return el("span", {}, span, " · session " + r.session + (r.ended ? " · " + HF.fmtTime(r.ended) : ""));
  }

  function renderList(jobs) {
    listArea.replaceChildren();
    if (jobs.length === 0) {
      listArea.append(el("p", { class: "empty" }, canBackup ? "No jobs yet: create one with New job." : "No jobs yet."));
      return;
    }
    const cols = ["Name", "Kind", "Enabled", "Schedule", "Next run", "Last result", "Actions"];
    const head = el("tr", {}, ...cols.map((c) => el("th", { scope: "col" }, c)));
    const rows = jobs.map((j) =>
      el("tr", { "data-job": j.name },
        el("td", { class: "name" }, j.name),
        el("td", {}, j.kind),
        el("td", {}, j.enabled ? "yes" : "no"),
        el("td", {}, j.schedule || "on demand"),
        el("td", {}, HF.fmtTime(j.next_run)),
        el("td", { class: "result" }, lastResult(j)),
        el("td", {}, actions(j))));
    listArea.append(el("table", { class: "jobs" }, el("caption", {}, "Jobs"), el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  // refresh reloads the list; while a session runs it reloads again in a
  // few seconds, so the list follows it to its end.
  async function refresh() {
    clearTimeout(pollTimer);
    const jobs = await HF.api("GET", "/jobs?summary=true");
    renderList(jobs);
    if (jobs.some((j) => j.last_run && active(j.last_run.state))) {
      pollTimer = setTimeout(() => refresh().catch(HF.fail), 2000);
    }
  }

  // ---- the wizard ----

  const steps = [
    { id: "vms", title: "Name and VMs" },
    { id: "repository", title: "Repository" },
    { id: "schedule", title: "Schedule" },
    { id: "options", title: "Retention and options" },
    { id: "review", title: "Review" },
  ];

  // fieldOf maps the field an API error names to the wizard's input.
  function fieldOf(msg) {
    const table = [
      [/^schedule\b/, "job-schedule"],
      [/^definition\.repository\b/, "job-repository"],
      [/^definition\.(vms|select)\b/, "vm-search"],
      [/^definition\.retention\.keep_last\b/, "keep-last"],
      [/^definition\.retention\.keep_daily\b/, "keep-daily"],
      [/^definition\.retention\.keep_weekly\b/, "keep-weekly"],
      [/^definition\.retention\.keep_monthly\b/, "keep-monthly"],
      [/^definition\.retention\.keep_yearly\b/, "keep-yearly"],
      [/^definition\.retention\b/, "keep-last"],
      [/^definition\.guest\b/, "guest-pre"],
      [/^definition\.throttle\b/, "job-throttle"],
      [/^definition\.retries\b/, "job-retries"],
      [/(job|name)\b/i, "job-name"],
    ];
    for (const [re, id] of table) {
      if (re.test(msg)) {
        return id;
      }
    }
    return "";
  }

  function input(id, label, attrs, hint) {
    const hintId = hint ? id + "-hint" : undefined;
    const i = el("input", Object.assign({ id: id, name: id, "aria-describedby": hintId }, attrs || {}));
    return { input: i, nodes: [el("label", { for: id }, label), i, hint ? el("p", { class: "hint", id: hintId }, hint) : null] };
  }

  function numberInput(id, label, value) {
    return input(id, label, { type: "number", min: "0", step: "1", inputmode: "numeric", value: value ? String(value) : "" });
  }

  async function openWizard(job) {
    clearTimeout(pollTimer);
    const editing = !!job;
    let def = {};
    if (editing) {
      const full = await HF.api("GET", "/jobs/" + encodeURIComponent(job.name));
      def = full.definition || {};
    }
    const [sources, repos] = await Promise.all([HF.api("GET", "/sources"), HF.api("GET", "/agents?role=repository")]);

    // chosen: the selections the job will carry, as "source\u0000pattern".
    const chosen = new Set((def.select || []).filter((s) => !s.folder && !s.tag && !s.metadata)
      .map((s) => s.source + "\u0000" + (s.pattern || "*")));
    const otherSelect = (def.select || []).filter((s) => s.folder || s.tag || s.metadata);
    const listed = def.vms || []; // VMs listed with their disks (CLI --vm): kept as they are

    const form = el("form", { id: "job-form", class: "wizard", novalidate: true, "aria-labelledby": "wizard-title" });
    const title = el("h2", { id: "wizard-title" }, editing ? "Edit job " + job.name : "New job");
    const stepList = el("ol", { class: "steps" }, ...steps.map((s, i) =>
      el("li", { "data-step": s.id }, String(i + 1) + ". " + s.title)));
    const errorBox = el("div", { id: "job-error", class: "error", role: "alert", hidden: true });

    // Step 1: name and VMs.
    const name = input("job-name", "Job name", { required: true, autocomplete: "off", value: editing ? job.name : "" },
      "Letters, digits, . _ -; renaming keeps the job's history.");
    const sourceSel = el("select", { id: "vm-source", name: "vm-source" },
      ...sources.map((s) => el("option", { value: s.name }, s.name + " (" + s.kind + ")")));
    const search = input("vm-search", "Search VMs", { type: "search", autocomplete: "off", placeholder: "name contains…" });
    const whole = el("input", { type: "checkbox", id: "vm-all" });
    const vmList = el("ul", { id: "vm-list", class: "vm-list", "aria-label": "VMs of the source" });
    const vmNote = el("p", { id: "vm-note", class: "hint", role: "status" });
    const chosenList = el("ul", { id: "vm-chosen", class: "chosen", "aria-label": "Chosen VMs" });
    let sourceVMs = [];

    function renderChosen() {
      chosenList.replaceChildren();
      for (const key of chosen) {
        const [src, pattern] = key.split("\u0000");
        const rm = el("button", { type: "button", class: "small secondary", "aria-label": "Remove " + pattern + " of " + src }, "Remove");
        rm.addEventListener("click", () => {
          chosen.delete(key);
          renderChosen();
          renderVMs();
        });
        chosenList.append(el("li", {}, (pattern === "*" ? "all VMs of " + src : pattern + " from " + src) + " ", rm));
      }
      for (const s of otherSelect) {
        chosenList.append(el("li", {}, "selection on " + s.source + " (" + (s.folder || s.tag || s.metadata) + "), kept"));
      }
      for (const vm of listed) {
        chosenList.append(el("li", {}, vm.name + " (listed with its disks), kept"));
      }
      if (!chosenList.firstChild) {
        chosenList.append(el("li", { class: "empty" }, "No VMs chosen yet."));
      }
    }

    function renderVMs() {
      const src = sourceSel.value;
      const q = search.input.value.trim().toLowerCase();
      whole.checked = chosen.has(src + "\u0000*");
      vmList.replaceChildren();
      const shown = sourceVMs.filter((vm) => vm.name.toLowerCase().includes(q));
      for (const vm of shown) {
        const id = "vm-" + src + "-" + vm.name;
        const box = el("input", { type: "checkbox", id: id, value: vm.name, disabled: whole.checked });
        box.checked = whole.checked || chosen.has(src + "\u0000" + vm.name);
        box.addEventListener("change", () => {
          const key = src + "\u0000" + vm.name;
          if (box.checked) {
            chosen.add(key);
          } else {
            chosen.delete(key);
          }
          renderChosen();
        });
        vmList.append(el("li", {}, box, " ", el("label", { for: id }, vm.name),
          el("span", { class: "hint" }, " " + vm.disks.length + (vm.disks.length === 1 ? " disk" : " disks"))));
      }
      vmNote.textContent = sourceVMs.length === 0 ? vmNote.textContent
        : shown.length + " of " + sourceVMs.length + " VMs shown.";
    }

    async function loadVMs() {
      sourceVMs = [];
      vmList.replaceChildren();
      if (!sourceSel.value) {
        vmNote.textContent = "No sources yet: add one under Infrastructure or with holdfast source add.";
        return;
      }
      vmNote.textContent = "Listing the VMs of " + sourceSel.value + "…";
      try {
        const ans = await HF.api("GET", "/sources/" + encodeURIComponent(sourceSel.value) + "/vms");
        sourceVMs = ans.vms || [];
        vmNote.textContent = sourceVMs.length === 0 ? "The source has no VMs now." : "";
      } catch (err) {
        vmNote.textContent = err.message;
      }
      renderVMs();
    }
    sourceSel.addEventListener("change", () => loadVMs().catch(HF.fail));
    search.input.addEventListener("input", renderVMs);
    whole.addEventListener("change", () => {
      const key = sourceSel.value + "\u0000*";
      if (whole.checked) {
        chosen.add(key);
      } else {
        chosen.delete(key);
      }
      renderChosen();
      renderVMs();
    });
    const step1 = [
      ...name.nodes,
      el("label", { for: "vm-source" }, "Source"), sourceSel,
      ...search.nodes,
      el("p", { class: "check" }, whole, " ", el("label", { for: "vm-all" }, "All VMs of this source, as they are when each session starts")),
      vmNote, vmList,
      el("h3", {}, "Chosen"), chosenList,
    ];

    // Step 2: repository and password.
    const repoSel = el("select", { id: "job-repository", name: "job-repository" },
      el("option", { value: "" }, "— choose —"),
      ...repos.map((r) => el("option", { value: r.name }, r.name)));
    if (def.repository) {
      if (!repos.some((r) => r.name === def.repository)) {
        repoSel.append(el("option", { value: def.repository }, def.repository));
      }
      repoSel.value = def.repository;
    }
    const password = input("job-password", "Repository password", { type: "password", autocomplete: "new-password" },
      editing ? "Leave empty to keep the stored password." : "Sealed on the server; never shown again.");
    const step2 = [el("label", { for: "job-repository" }, "Repository"), repoSel, ...password.nodes];

    // Step 3: schedule, with its next runs from the server.
    const sched = input("job-schedule", "Schedule", { autocomplete: "off", value: editing ? job.schedule : "",
      placeholder: "0 2 * * *" }, "A cron expression, @daily, \"daily 02:00\" or \"after JOB\"; empty: on demand only.");
    const enabled = el("input", { type: "checkbox", id: "job-enabled" });
    enabled.checked = editing ? job.enabled : true;
    const nextRuns = el("div", { id: "schedule-next", role: "status", "aria-live": "polite" });
    let previewTimer = 0;
    let previewSeq = 0;
    async function preview() {
      const seq = ++previewSeq;
      try {
        const p = await HF.api("GET", "/schedule/preview?schedule=" + encodeURIComponent(sched.input.value.trim()));
        if (seq !== previewSeq) {
          return;
        }
        sched.input.removeAttribute("aria-invalid");
        if (p.after) {
          nextRuns.replaceChildren(el("p", {}, "Runs each time job " + p.after + " ends."));
        } else if (!p.next || p.next.length === 0) {
          nextRuns.replaceChildren(el("p", {}, "On demand only: runs when started."));
        } else {
          nextRuns.replaceChildren(el("p", {}, "Next runs:"), el("ul", { class: "next-runs" }, ...p.next.map((t) => el("li", {}, HF.fmtTime(t)))));
        }
      } catch (err) {
        if (seq !== previewSeq) {
          return;
        }
        sched.input.setAttribute("aria-invalid", "true");
        nextRuns.replaceChildren(el("p", { class: "error", id: "schedule-error" }, err.message));
      }
    }
    sched.input.addEventListener("input", () => {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(() => preview().catch(HF.fail), 250);
    });
    const step3 = [...sched.nodes, nextRuns,
      el("p", { class: "check" }, enabled, " ", el("label", { for: "job-enabled" }, "Enabled (runs on its schedule)"))];

    // Step 4: retention, guest processing, throttle, retries.
    const ret = def.retention || {};
    const keep = [
      numberInput("keep-last", "Keep last", ret.keep_last),
      numberInput("keep-daily", "Keep daily", ret.keep_daily),
      numberInput("keep-weekly", "Keep weekly", ret.keep_weekly),
      numberInput("keep-monthly", "Keep monthly", ret.keep_monthly),
      numberInput("keep-yearly", "Keep yearly", ret.keep_yearly),
    ];
    const guest = def.guest || {};
    const pre = el("textarea", { id: "guest-pre", rows: "3", spellcheck: "false" });
    pre.value = guest.pre_freeze || "";
    const post = el("textarea", { id: "guest-post", rows: "3", spellcheck: "false" });
    post.value = guest.post_thaw || "";
    const policy = el("select", { id: "guest-policy" }, el("option", { value: "fail" }, "fail the VM"),
      el("option", { value: "warn" }, "warn and continue"));
    policy.value = guest.policy || "fail";
    const guestUser = input("guest-user", "Guest SSH user", { autocomplete: "off", value: guest.user || "" }, "Empty: root.");
    const throttle = el("textarea", { id: "job-throttle", rows: "3", spellcheck: "false", "aria-describedby": "job-throttle-hint" });
    throttle.value = (def.throttle || []).join("\n");
    const retries = numberInput("job-retries", "Retries of a failed VM", (def.retries || {}).count);
    const step4 = [
      el("fieldset", { class: "inline" }, el("legend", {}, "Retention (points kept per VM; all empty: keep every point)"),
        ...keep.map((k) => el("div", {}, ...k.nodes))),
      el("fieldset", {}, el("legend", {}, "Guest processing"),
        el("label", { for: "guest-pre" }, "Pre-freeze script"), pre,
        el("label", { for: "guest-post" }, "Post-thaw script"), post,
        el("label", { for: "guest-policy" }, "When a script fails"), policy,
        ...guestUser.nodes),
      el("label", { for: "job-throttle" }, "Throttle"), throttle,
      el("p", { class: "hint", id: "job-throttle-hint" }, "One traffic rule per line (NAME: [NETS] RATE [WINDOW]), e.g. \"day: 20MiB/s mon-fri 08:00-18:00\"."),
      ...retries.nodes,
    ];

    // Step 5: review and save.
    const review = el("dl", { id: "job-review", class: "review" });
    const save = el("button", { type: "submit", id: "job-save" }, editing ? "Save job" : "Create job");
    const step5 = [review];

    const bodies = [step1, step2, step3, step4, step5];
    const fieldsets = steps.map((s, i) => el("fieldset", { class: "step", id: "step-" + s.id, hidden: i !== 0 },
      el("legend", {}, "Step " + (i + 1) + " of " + steps.length + ": " + s.title), ...bodies[i]));
    const back = el("button", { type: "button", id: "wizard-back", class: "secondary" }, "Back");
    const next = el("button", { type: "button", id: "wizard-next" }, "Next");
    const cancel = el("button", { type: "button", id: "wizard-cancel", class: "secondary" }, "Cancel");
    form.append(title, stepList, errorBox, ...fieldsets, el("div", { class: "wizard-nav" }, back, next, save, cancel));
    wizardArea.replaceChildren(form);
    listArea.closest("section").hidden = true;

    function numberOf(k) {
      const v = k.input.value.trim();
      return v === "" ? 0 : Number(v);
    }

    function request() {
      const d = Object.assign({}, def);
      const select = [...otherSelect];
      for (const key of chosen) {
        const [src, pattern] = key.split("\u0000");
        select.push(pattern === "*" ? { source: src } : { source: src, pattern: pattern });
      }
      d.select = select.length ? select : undefined;
      d.repository = repoSel.value || undefined;
      const r = {};
      ["keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"].forEach((f, i) => {
        if (numberOf(keep[i]) !== 0) {
          r[f] = numberOf(keep[i]);
        }
      });
      d.retention = Object.keys(r).length ? r : undefined;
      const g = Object.assign({}, def.guest || {});
      g.pre_freeze = pre.value || undefined;
      g.post_thaw = post.value || undefined;
      g.policy = policy.value === "fail" ? undefined : policy.value;
      g.user = guestUser.input.value.trim() || undefined;
      d.guest = Object.values(g).some((v) => v !== undefined) ? g : undefined;
      const rules = throttle.value.split("\n").map((s) => s.trim()).filter((s) => s !== "");
      d.throttle = rules.length ? rules : undefined;
      const rc = numberOf(retries);
      d.retries = rc !== 0 || (def.retries && def.retries.wait_seconds) ? Object.assign({}, def.retries || {}, { count: rc }) : undefined;
      const req = { name: name.input.value.trim(), definition: d, schedule: sched.input.value.trim(), enabled: enabled.checked };
      if (!editing) {
        req.kind = "backup";
      }
      if (password.input.value !== "") {
        req.password = password.input.value;
      }
      return req;
    }

    function renderReview() {
      const req = request();
      const d = req.definition;
      const rows = [
        ["Name", req.name || "–"],
        ["VMs", [...chosenList.children].map((li) => li.firstChild.textContent.trim()).join("; ")],
        ["Repository", d.repository || "–"],
        ["Password", req.password ? "given" : editing ? "unchanged" : "none"],
        ["Schedule", req.schedule || "on demand"],
        ["Enabled", req.enabled ? "yes" : "no"],
        ["Retention", d.retention ? Object.entries(d.retention).map(([k, v]) => k + " " + v).join(", ") : "keep every point"],
        ["Guest processing", d.guest && (d.guest.pre_freeze || d.guest.post_thaw) ? "scripts, on failure " + (d.guest.policy || "fail") : "none"],
        ["Throttle", d.throttle ? d.throttle.join("; ") : "none"],
      ];
      review.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    }

    let current = 0;
    function show(i, focusId) {
      current = i;
      fieldsets.forEach((f, j) => {
        f.hidden = j !== i;
      });
      stepList.querySelectorAll("li").forEach((li, j) => {
        if (j === i) {
          li.setAttribute("aria-current", "step");
        } else {
          li.removeAttribute("aria-current");
        }
      });
      back.disabled = i === 0;
      next.hidden = i === steps.length - 1;
      save.hidden = i !== steps.length - 1;
      if (steps[i].id === "review") {
        renderReview();
      }
      const target = focusId ? document.getElementById(focusId) : fieldsets[i].querySelector("input, select, textarea, button");
      (target || fieldsets[i]).focus();
    }
    back.addEventListener("click", () => show(Math.max(0, current - 1)));
    next.addEventListener("click", () => show(Math.min(steps.length - 1, current + 1)));
    cancel.addEventListener("click", () => closeWizard());
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (current !== steps.length - 1) {
        // Enter in a field (implicit submission) goes to the next step;
        // only the last step's button saves.
        show(current + 1);
        return;
      }
      errorBox.hidden = true;
      form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
      save.disabled = true;
      try {
        const req = request();
        if (editing) {
          await HF.api("PUT", "/jobs/" + encodeURIComponent(job.name), req);
        } else {
          await HF.api("POST", "/jobs", req);
        }
        HF.status("Job " + req.name + (editing ? " saved." : " created."));
        closeWizard();
      } catch (err) {
        // The API's message, next to the form, on the step it names.
        errorBox.textContent = err.message;
        errorBox.hidden = false;
        const id = fieldOf(err.message);
        const field = id && document.getElementById(id);
        if (field) {
          field.setAttribute("aria-invalid", "true");
          field.setAttribute("aria-errormessage", "job-error");
          show(fieldsets.findIndex((f) => f.contains(field)), id);
        }
      } finally {
        save.disabled = false;
      }
    });

    renderChosen();
    show(0);
    await Promise.all([loadVMs(), preview()]);
  }

  function closeWizard() {
    wizardArea.replaceChildren();
    listArea.closest("section").hidden = false;
    refresh().catch(HF.fail);
    const add = document.getElementById("job-new");
    if (add) {
      add.focus();
    }
  }

  await refresh();
})().catch((err) => window.Holdfast.fail(err));
