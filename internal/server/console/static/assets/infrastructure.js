// infrastructure.js: the Infrastructure page. Proxies and repository
// agents (online or not, last heartbeat, what they announced: capacity,
// free space, immutability, transports), a one-time agent join token,
// sources (list, add with the fields `holdfast source add` sends, delete)
// and API tokens (list, create — shown once — and revoke). Each action is
// offered only to the roles the API allows (routes.go); the API refuses
// the others anyway.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const isAdmin = me.role === "administrator";
  const canBackup = isAdmin || me.role === "backup_operator";
  const content = document.getElementById("content");
  const agentsArea = el("div", { id: "agents" });
  const sourcesArea = el("div", { id: "sources" });
  const tokensArea = el("div", { id: "tokens" });

  // ---- agents ----

  function capabilities(a) {
    const caps = a.capabilities || {};
    if (a.role === "repository") {
      const st = caps.storage;
      if (!st) {
        return "–";
      }
      const parts = [];
      if (st.error) {
        parts.push(st.error);
      } else {
        parts.push("capacity " + HF.fmtBytes(st.filesystem_size_bytes), "free " + HF.fmtBytes(st.filesystem_free_bytes));
      }
      if (st.immutable_days) {
        parts.push("immutable " + st.immutable_days + " days" +
          (st.immutable_files ? " (chattr +i)" : st.immutable_files_error ? " (no chattr +i: " + st.immutable_files_error + ")" : ""));
      } else {
        parts.push("not immutable");
      }
      return parts.join(" · ");
    }
    const parts = [];
    if (caps.transports && caps.transports.length) {
      parts.push("transports " + caps.transports.join(", "));
    }
    if (caps.reach && caps.reach.length) {
      parts.push("reaches " + caps.reach.join(", "));
    }
    if (caps.restore_roots && caps.restore_roots.length) {
      parts.push("restores to " + caps.restore_roots.join(", "));
    }
    return parts.length ? parts.join(" · ") : "–";
  }

  async function loadAgents() {
    const agents = await HF.api("GET", "/agents");
    const cols = [
      { title: "Name", value: (a) => a.name },
      { title: "Role", value: (a) => a.role },
      { title: "State", value: (a) => el("span", { class: a.online ? "state-success" : "state-failed", "data-state": a.name },
        a.online ? "online" : "offline") },
      { title: "Address", value: (a) => a.address || "–" },
      { title: "Slots", value: (a) => a.slots },
      { title: "Last heartbeat", value: (a) => HF.fmtTime(a.last_heartbeat) },
      { title: "Capabilities", value: capabilities },
    ];
    agentsArea.replaceChildren(HF.table("Agents", cols, agents, "No proxies or repositories have joined yet."));
  }

  function joinTokenForm() {
    const role = HF.select("join-role", [["proxy", "Proxy"], ["repository", "Repository"]]);
    const ttl = el("input", { id: "join-ttl", type: "number", min: "0", max: "720", placeholder: "server default" });
    const out = el("div", { id: "join-out" });
    const f = HF.form("join-form", "New agent join token", [HF.field("Agent role", role),
      HF.field("Valid for (hours)", ttl, "Empty: the server's default.")], "Create join token", async () => {
      const body = { role: role.value };
      if (ttl.value) {
        body.ttl_seconds = Math.round(Number(ttl.value) * 3600);
      }
      const tok = await HF.api("POST", "/agents/join-tokens", body);
      out.replaceChildren(HF.secret("join-token", "Join token for a " + tok.role + " (shown once; expires " +
        HF.fmtTime(tok.expires) + ")", tok.token),
      el("p", { class: "hint" }, "Give it to the agent at its first start: HOLDFAST_JOIN_TOKEN=… holdfast " + tok.role + " --name NAME …"));
    });
    return el("div", {}, f, out);
  }

  // ---- sources ----

  function sourceAddress(s) {
    return (s.definition && s.definition.address) || "–";
  }

  async function loadSources() {
    const sources = await HF.api("GET", "/sources");
    const cols = [
      { title: "Name", value: (s) => s.name },
      { title: "Type", value: (s) => s.kind },
      { title: "Address", value: sourceAddress },
      { title: "Proxy", value: (s) => (s.definition && s.definition.proxy) || "–" },
      { title: "Added", value: (s) => HF.fmtTime(s.created) },
    ];
    if (canBackup) {
      cols.push({ title: "Actions", value: (s) => HF.button("Delete", { class: "small danger", "data-action": "delete-source",
        "aria-label": "Delete source " + s.name }, async () => {
        await HF.api("DELETE", "/sources/" + encodeURIComponent(s.name));
        HF.status("Source " + s.name + " deleted.");
        await loadSources();
      }) });
    }
    sourcesArea.replaceChildren(HF.table("Sources", cols, sources, "No sources yet."));
  }

  // sourceForm sends what `holdfast source add` sends: {name, kind,
  // definition}; image/nbd/qemu take an address, vSphere the password file
  // on the server host and its TLS trust, libvirt the proxy and list URI.
  function sourceForm() {
    const name = el("input", { id: "source-name", type: "text", autocomplete: "off" });
    const kind = HF.select("source-kind", [["image", "Image files (directory)"], ["nbd", "NBD endpoint"],
      ["qemu", "QEMU (QMP sockets)"], ["vsphere", "vCenter / ESXi"], ["libvirt", "libvirt daemon"]]);
    const address = el("input", { id: "source-address", type: "text", autocomplete: "off" });
    const pwFile = el("input", { id: "source-password-file", type: "text", autocomplete: "off" });
    const thumb = el("input", { id: "source-thumbprint", type: "text", autocomplete: "off" });
    const ca = el("textarea", { id: "source-ca", rows: "3" });
    const insecure = el("input", { id: "source-insecure", type: "checkbox" });
    const proxy = el("input", { id: "source-proxy", type: "text", autocomplete: "off" });
    const listAddr = el("input", { id: "source-list-address", type: "text", autocomplete: "off" });
    const vsphere = el("div", { "data-kind": "vsphere", hidden: true },
      HF.field("Password file (on the server host)", pwFile, "The server stores the path, never the password."),
      HF.field("TLS thumbprint (SHA-256)", thumb), HF.field("CA certificate (PEM)", ca),
      el("div", { class: "check" }, insecure, el("label", { for: "source-insecure" }, " Do not verify TLS (insecure)")));
    const libvirt = el("div", { "data-kind": "libvirt", hidden: true },
      HF.field("Proxy (on the hypervisor host)", proxy),
      HF.field("List address", listAddr, "The URI the server lists domains with; empty: the address."));
    const hints = {
      image: "A directory of disk images, e.g. /images",
      nbd: "nbd://HOST:PORT/EXPORT",
      qemu: "A QMP socket directory or QEMU host",
      vsphere: "vsphere://USER@HOST[:PORT]",
      libvirt: "qemu:///system, qemu+ssh://USER@HOST/system",
    };
    const hint = el("p", { class: "hint", id: "source-address-hint" });
    const show = () => {
      vsphere.hidden = kind.value !== "vsphere";
      libvirt.hidden = kind.value !== "libvirt";
      hint.textContent = hints[kind.value];
    };
    kind.addEventListener("change", show);
    show();
    const addrField = HF.field("Address", address);
    addrField.append(hint);
    return HF.form("source-form", "Add a source", [HF.field("Name", name), HF.field("Type", kind), addrField, vsphere, libvirt],
      "Add source", async () => {
        const def = { address: address.value.trim() };
        if (kind.value === "vsphere") {
          def.password_file = pwFile.value.trim();
          if (thumb.value.trim()) {
            def.tls_thumbprint = thumb.value.trim();
          }
          if (ca.value.trim()) {
            def.ca_pem = ca.value;
          }
          if (insecure.checked) {
            def.insecure = true;
          }
        } else if (kind.value === "libvirt") {
          if (proxy.value.trim()) {
            def.proxy = proxy.value.trim();
          }
          if (listAddr.value.trim()) {
            def.list_address = listAddr.value.trim();
          }
        }
        const src = await HF.api("POST", "/sources", { name: name.value.trim(), kind: kind.value, definition: def });
        HF.status("Source " + src.name + " added." + (src.warnings && src.warnings.length ? " Warning: " + src.warnings.join("; ") : ""));
        name.value = "";
        address.value = "";
        await loadSources();
      });
  }

  // ---- API tokens (administrators) ----

  async function loadTokens() {
    const tokens = await HF.api("GET", "/tokens");
    const cols = [
      { title: "Name", value: (k) => k.name },
      { title: "Role", value: (k) => HF.roleName(k.role) },
      { title: "Created", value: (k) => HF.fmtTime(k.created) },
      { title: "Last used", value: (k) => HF.fmtTime(k.last_used) },
      { title: "Actions", value: (k) => HF.button("Revoke", { class: "small danger", "data-action": "revoke-token",
        "aria-label": "Revoke token " + k.name }, async () => {
        await HF.api("DELETE", "/tokens/" + encodeURIComponent(k.name));
        HF.status("Token " + k.name + " revoked.");
        await loadTokens();
      }) },
    ];
    tokensArea.replaceChildren(HF.table("API tokens", cols, tokens, "No API tokens."));
  }

  function tokenForm() {
    const name = el("input", { id: "token-name", type: "text", autocomplete: "off" });
    const role = HF.select("token-role", HF.roles);
    const out = el("div", { id: "token-out" });
    const f = HF.form("token-form", "New API token", [HF.field("Name", name), HF.field("Role", role)], "Create token", async () => {
      const tok = await HF.api("POST", "/tokens", { name: name.value.trim(), role: role.value });
      out.replaceChildren(HF.secret("new-token", "Token " + tok.name + " (shown once)", tok.token));
      name.value = "";
      await loadTokens();
    });
    return el("div", {}, f, out);
  }

  content.append(HF.section("Proxies and repositories", agentsArea, isAdmin ? joinTokenForm() : null),
    HF.section("Sources", sourcesArea, canBackup ? sourceForm() : null));
  if (isAdmin) {
    content.append(HF.section("API tokens", tokensArea, tokenForm()));
  }
  await Promise.all([loadAgents(), loadSources(), isAdmin ? loadTokens() : null]);
  document.body.dataset.ready = "1";
})().catch((err) => window.Holdfast.fail(err));
