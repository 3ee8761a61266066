// Sheaf's live console: draws each snapshot the coordinator pushes on /ui/events.
// Read-only; every value goes into the page as text or an attribute, never as markup.
"use strict";

(function () {
  const STATUSES = ["waiting", "ready", "leased", "proved", "dead", "cancelled"];
  const $ = (id) => document.getElementById(id);
  // Trees the operator closed or opened by hand, by sequence; the newest few open by default.
  const opened = new Map();
  // Pages of collapsed levels the operator expanded: "seq:level" -> {jobs, more, offset}.
  const expanded = new Map();
  let last = null;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function ago(ms) {
    if (ms === null || ms === undefined) return "-";
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return s.toFixed(0) + " s ago";
    if (s < 3600) return (s / 60).toFixed(0) + " min ago";
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function short(hex) {
    return hex ? hex.slice(0, 10) + "…" : "-";
  }

  function label(snapshot, seq) {
    return snapshot.rollup && seq.block !== null ? "block " + seq.block : "sequence " + seq.id;
  }

  function jobTitle(job) {
    const lines = [
      job.id + " · " + job.kind + " (" + job.circuit + ")",
      "status: " + job.status,
      "prover: " + (job.prover || "-"),
      "attempts: " + job.attempts + " (leases granted: " + job.leases + ")",
    ];
    if (job.leased_ms) lines.push("leased: " + ago(job.leased_ms));
    if (job.expires_ms) lines.push("lease expires in " + Math.max(0, ((job.expires_ms - Date.now()) / 1000)).toFixed(0) + " s");
    if (job.proved_ms) lines.push("proved: " + ago(job.proved_ms));
    if (job.prove_ms !== null && job.prove_ms !== undefined) lines.push("proving took " + (job.prove_ms / 1000).toFixed(2) + " s");
    return lines.join("\n");
  }

  // One job's node, updated in place so hovering survives updates; `seen` keeps the states
  // this page saw it in, in order.
  function updateJob(node, job, requeued) {
    const previous = node.getAttribute("data-status");
    if (previous !== job.status) {
      const seen = node.getAttribute("data-seen");
      node.setAttribute("data-seen", seen ? seen + " " + job.status : job.status);
    }
    node.setAttribute("data-status", job.status);
    node.setAttribute("data-kind", job.kind);
    node.setAttribute("data-attempts", job.attempts);
    if (job.prover) node.setAttribute("data-prover", job.prover);
    else node.removeAttribute("data-prover");
    if (requeued) node.setAttribute("data-requeued", requeued);
    node.title = jobTitle(job) + (requeued ? "\nlease taken back " + requeued + "×" : "");
  }

  function jobRow(container, jobs, requeued) {
    const existing = new Map();
    for (const child of Array.from(container.children)) existing.set(child.getAttribute("data-job"), child);
    jobs.forEach((job, i) => {
      let node = existing.get(job.id);
      if (!node) node = el("span", { class: "job", "data-job": job.id });
      existing.delete(job.id);
      updateJob(node, job, requeued.get(job.id));
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
    });
    for (const stale of existing.values()) stale.remove();
  }

  function countsBar(counts, total) {
    const bar = el("div", { class: "counts" });
    for (const status of STATUSES) {
      const n = counts[status] || 0;
      if (!n || status === "waiting") continue;
      bar.appendChild(el("span", { "data-status": status, style: null, title: n + " " + status }));
      bar.lastChild.style.width = (100 * n / total) + "%";
    }
    return bar;
  }

  function countText(counts) {
    return STATUSES.filter((s) => counts[s]).map((s) => counts[s] + " " + s).join(", ");
  }

  async function expand(seq, level, offset) {
    const key = seq + ":" + level;
    const url = "/ui/api/sequences/" + seq + "/levels/" + level + "?offset=" + offset;
    const response = await fetch(url, { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const page = await response.json();
    const before = offset > 0 && expanded.has(key) ? expanded.get(key).jobs : [];
    expanded.set(key, { jobs: before.concat(page.jobs), more: page.more, next: offset + page.jobs.length });
    if (last) render(last);
  }

  function renderLevel(seqView, level, requeued) {
    const row = el("div", { class: "level", "data-level": level.level });
    const total = Object.values(level.counts).reduce((a, b) => a + b, 0);
    row.appendChild(el("span", { class: "label" }, "level " + level.level));
    if (level.jobs) {
      const jobs = el("div", { class: "jobs" });
      jobRow(jobs, level.jobs, requeued);
      row.appendChild(jobs);
      return row;
    }
    const key = seqView.id + ":" + level.level;
    const page = expanded.get(key);
    row.setAttribute("data-collapsed", "true");
    row.setAttribute("data-count", total);
    if (page) {
      const jobs = el("div", { class: "jobs" });
      jobRow(jobs, page.jobs, requeued);
      row.appendChild(jobs);
      if (page.more) {
        const more = el("button", { type: "button" }, "more");
        more.addEventListener("click", () => expand(seqView.id, level.level, page.next));
        row.appendChild(more);
      }
      const fold = el("button", { type: "button" }, "collapse");
      fold.addEventListener("click", () => { expanded.delete(key); render(last); });
      row.appendChild(fold);
    } else {
      row.appendChild(countsBar(level.counts, total));
      const button = el("button", { type: "button", "data-expand": key }, "expand");
      button.addEventListener("click", () => expand(seqView.id, level.level, 0));
      row.appendChild(button);
    }
    row.appendChild(el("span", { class: "count-text" }, total + " jobs: " + countText(level.counts)));
    return row;
  }

  function renderTrees(snapshot, requeued) {
    const trees = $("trees");
    const keep = new Set();
    snapshot.sequences.forEach((seq, i) => {
      const key = String(seq.id);
      keep.add(key);
      let tree = trees.querySelector('details[data-tree="' + key + '"]');
      if (!tree) {
        tree = el("details", { class: "tree", "data-tree": key });
        tree.appendChild(el("summary"));
        tree.appendChild(el("div", { class: "levels" }));
        tree.addEventListener("toggle", () => opened.set(key, tree.open));
        tree.open = opened.has(key) ? opened.get(key) : i < 4;
      }
      if (trees.children[i] !== tree) trees.insertBefore(tree, trees.children[i] || null);
      tree.setAttribute("data-state", seq.state);
      const summary = tree.querySelector("summary");
      summary.textContent = label(snapshot, seq);
      summary.appendChild(el("span", { class: "meta" },
        seq.state + " · " + seq.jobs + " jobs" + (seq.collapsed ? " (levels as counts)" : "") +
        " · " + countText(seq.counts)));
      const levels = tree.querySelector(".levels");
      // Root level on top; job nodes are kept (and updated in place) level by level.
      const wanted = seq.levels.slice().reverse();
      wanted.forEach((level, j) => {
        let row = levels.querySelector('.level[data-level="' + level.level + '"]');
        if (level.jobs && row && !row.hasAttribute("data-collapsed")) {
          jobRow(row.querySelector(".jobs"), level.jobs, requeued);
        } else {
          const fresh = renderLevel(seq, level, requeued);
          if (row) row.replaceWith(fresh); else levels.appendChild(fresh);
          row = fresh;
        }
        if (levels.children[j] !== row) levels.insertBefore(row, levels.children[j] || null);
      });
      while (levels.children.length > wanted.length) levels.lastChild.remove();
    });
    for (const tree of Array.from(trees.children)) {
      if (!keep.has(tree.getAttribute("data-tree"))) tree.remove();
    }
  }

  function settlementText(s) {
    const parts = [];
    if (s.phase) parts.push(s.phase + " phase" + (s.window_opened_at !== null ? " (window from block " + s.window_opened_at + ")" : ""));
    if (s.hashes.length) parts.push("hash " + s.hashes.map((h) => h.status + (h.block !== null ? " in " + h.block : "")).join(", "));
    if (s.reveals.length) parts.push("reveal " + s.reveals.map((h) => h.status + (h.block !== null ? " in " + h.block : "")).join(", "));
    if (s.prover_rewards) parts.push("provers paid " + s.prover_rewards.paid + " of " + s.prover_rewards.owed);
    if (!parts.length) parts.push(s.registered ? "registered" : "-");
    return parts.join(" · ");
  }

  function renderSequences(snapshot) {
    const body = $("sequences").tBodies[0];
    body.replaceChildren();
    for (const seq of snapshot.sequences) {
      const c = seq.counts;
      const row = el("tr", { "data-sequence": seq.id, "data-state": seq.state, "data-block": seq.block });
      row.appendChild(el("td", {}, label(snapshot, seq) + (seq.txs !== null ? " (" + seq.txs + " tx)" : "")));
      row.appendChild(el("td", { class: "state" }, seq.state));
      row.appendChild(el("td", {}, (c.proved || 0) + " / " + seq.jobs));
      row.appendChild(el("td", {}, c.leased || 0));
      row.appendChild(el("td", {}, (c.waiting || 0) + " / " + (c.ready || 0)));
      const s = seq.settlement;
      const hashes = s.hashes.map((h) => h.tx_hash).concat(s.reveals.map((h) => h.tx_hash));
      row.appendChild(el("td", { title: hashes.join("\n") }, settlementText(s)));
      row.appendChild(el("td", { class: "hash", "data-finalized-block": s.finalized_block, title: s.sender || "" },
        s.finalized_block !== null ? "block " + s.finalized_block + " by " + short(s.sender) : "-"));
      body.appendChild(row);
    }
    const t = snapshot.tips;
    const tips = $("tips");
    const show = (v) => (v === null ? "-" : v);
    tips.setAttribute("data-published", show(t.published));
    tips.setAttribute("data-proven", show(t.proven));
    tips.setAttribute("data-settled", show(t.settled));
    tips.textContent = (snapshot.rollup ? "blocks" : "sequences") + ": published " + show(t.published) +
      " · proven " + show(t.proven) + " · settled " + show(t.settled);
    $("sequences-title").textContent = snapshot.rollup ? "Rollup blocks" : "Sequences";
    const chain = snapshot.chain;
    $("chain").textContent = chain
      ? "chain height " + show(chain.height) + " · sender " + short(chain.sender) + (chain.error ? " · " + chain.error : "")
      : "not settling";
  }

  function renderProvers(snapshot) {
    const body = $("provers").tBodies[0];
    body.replaceChildren();
    for (const p of snapshot.provers) {
      const row = el("tr", { "data-prover": p.id, "data-public-key": p.public_key, "data-membership": p.membership });
      row.appendChild(el("td", { title: "public key " + (p.public_key || "-") + "\nworker key " + (p.worker_pk || "-") }, p.id));
      row.appendChild(el("td", {}, p.membership || (p.registered ? "registered" : "not registered")));
      row.appendChild(el("td", {}, p.leases));
      row.appendChild(el("td", {}, p.jobs_proved));
      row.appendChild(el("td", {}, p.work_units));
      row.appendChild(el("td", { title: p.rejection_reasons.map((r) => r[0] + " " + r[1]).join("\n") }, p.rejections));
      row.appendChild(el("td", {}, p.settled_units));
      row.appendChild(el("td", {}, p.rewards_owed === null ? "-" : p.rewards_owed));
      row.appendChild(el("td", {}, ago(p.last_seen_ms)));
      body.appendChild(row);
    }
  }

  function renderEvents(snapshot) {
    const list = $("events");
    list.replaceChildren();
    for (const e of snapshot.events.slice().reverse()) {
      const what = e.kind === "requeued" ? "lease expired, ready again" : "dead: attempts exhausted";
      list.appendChild(el("li", { "data-event": e.kind, "data-job": e.job }, new Date(e.at_ms).toISOString().slice(11, 19) + " " + e.job + ": " + what));
    }
  }

  function render(snapshot) {
    const requeued = new Map();
    for (const e of snapshot.events) {
      if (e.kind === "requeued") requeued.set(e.job, (requeued.get(e.job) || 0) + 1);
    }
    renderSequences(snapshot);
    renderTrees(snapshot, requeued);
    renderProvers(snapshot);
    renderEvents(snapshot);
    document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || 0) + 1));
  }

  function connect() {
    const connection = $("connection");
    const source = new EventSource("/ui/events");
    source.addEventListener("open", () => {
      connection.textContent = "live";
      connection.setAttribute("data-connection", "live");
    });
    source.addEventListener("snapshot", (event) => {
      last = JSON.parse(event.data);
      render(last);
    });
    // The last snapshot stays on the page; the browser reconnects by itself.
    source.addEventListener("error", () => {
      connection.textContent = "disconnected (retrying)";
      connection.setAttribute("data-connection", "lost");
    });
  }

  document.addEventListener("DOMContentLoaded", connect);
})();
