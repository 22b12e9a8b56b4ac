// The labelling kit's script (harness/annotate/page.py inlines it; the page's CSP admits it by its sha256 only).
// Untrusted text is already escaped in the page's markup; this script never writes HTML, only textContent.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("kit-data").textContent);
  const items = [...document.querySelectorAll("section.item")];
  const store = "annotate:" + data.sample;
  let state = {};
  try { state = JSON.parse(localStorage.getItem(store) || "{}"); } catch (e) { state = {}; }
  let at = 0;
  let cursor = 0;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const label = (key) => (state[key] = state[key] || {scores: {}, pref: null, golden: false, expected: ""});
  const save = () => { try { localStorage.setItem(store, JSON.stringify(state)); } catch (e) { /* private mode */ } };
  const cells = (item) => [...item.querySelectorAll("td.cell")];
  const annotator = $("#annotator");

  function labelled(key) {
    const l = state[key];
    return !!l && (l.pref !== null || Object.keys(l.scores).length > 0);
  }

  function paint() {
    items.forEach((item, i) => { item.hidden = i !== at; });
    const item = items[at];
    const l = label(item.dataset.key);
    cells(item).forEach((td, i) => {
      const v = l.scores[td.dataset.criterion + "|" + td.dataset.side];
      td.textContent = v === undefined ? "\u00b7" : String(v);
      td.classList.toggle("cursor", i === cursor);
    });
    item.querySelectorAll("button[data-pref]").forEach((b) => b.classList.toggle("on", b.dataset.pref === l.pref));
    $("input.golden", item).checked = l.golden;
    $("textarea.expected", item).value = l.expected;
    $("div.gold", item).classList.toggle("on", l.golden);
    const done = items.filter((it) => labelled(it.dataset.key)).length;
    $("#progress").textContent = `pair ${at + 1} of ${items.length}; ${done} labelled`;
  }

  function move(step) {
    at = Math.max(0, Math.min(items.length - 1, at + step));
    cursor = 0;
    paint();
    window.scrollTo(0, 0);
  }

  function score(value) {
    const item = items[at];
    const all = cells(item);
    if (!all.length) return;
    const td = all[cursor];
    if (value < Number(td.dataset.min) || value > Number(td.dataset.max)) {
      say(`${value} is outside ${td.dataset.criterion}'s scale ${td.dataset.min}-${td.dataset.max}`);
      return;
    }
    label(item.dataset.key).scores[td.dataset.criterion + "|" + td.dataset.side] = value;
    cursor = Math.min(all.length - 1, cursor + 1);
    save();
    paint();
  }

  function prefer(choice) {
    label(items[at].dataset.key).pref = choice;
    save();
    paint();
  }

  function golden() {
    const item = items[at];
    const l = label(item.dataset.key);
    l.golden = !l.golden;
    if (l.golden && !l.expected && (l.pref === "A" || l.pref === "B")) {
      l.expected = $(`pre.out-${l.pref}`, item).textContent;
    }
    save();
    paint();
    if (l.golden && !l.expected) $("textarea.expected", item).focus();
  }

  function say(text) { $("#status").textContent = text; }

  function csvField(v) { return '"' + String(v).replace(/"/g, '""') + '"'; }

  function rows() {
    const out = [data.columns];
    const who = annotator.value.trim() || "annotator";
    for (const item of items) {
      const key = item.dataset.key;
      const l = state[key];
      if (!l) continue;
      const meta = data.items[key];
      const arm = (side) => (side === "A" ? meta.left : meta.right);
      const row = (armName, criterion, value, shownAs, expected) =>
        [meta.request_id, armName, criterion, value, who, data.sample, data.seed, key, shownAs, expected];
      for (const [k, v] of Object.entries(l.scores)) {
        const [criterion, side] = k.split("|");
        out.push(row(arm(side), criterion, v, side, ""));
      }
      if (l.pref !== null) {
        out.push(row("", "preference", l.pref === "tie" ? "tie" : arm(l.pref), l.pref, ""));
      }
      if (l.golden && l.expected.trim()) out.push(row("", "golden", "promote", "", l.expected));
    }
    return out;
  }

  function download() {
    const all = rows();
    const csv = all.map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
    const who = (annotator.value.trim() || "annotator").replace(/[^A-Za-z0-9_.-]/g, "_");
    const name = `labels-${data.sample}-${who}.csv`;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([csv], {type: "text/csv"}));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    say(`downloaded ${name}: ${all.length - 1} label rows`);
    document.title = `downloaded ${all.length - 1} rows`;
  }

  document.addEventListener("keydown", (ev) => {
    const typing = ev.target instanceof HTMLTextAreaElement || ev.target instanceof HTMLInputElement;
    if (typing) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (/^[0-9]$/.test(k)) score(k === "0" ? 10 : Number(k));
    else if (k === "a" || k === "A") prefer("A");
    else if (k === "b" || k === "B") prefer("B");
    else if (k === "t" || k === "T") prefer("tie");
    else if (k === "g") golden();
    else if (k === "n" || k === "ArrowRight" || k === "Enter") move(1);
    else if (k === "p" || k === "ArrowLeft") move(-1);
    else if (k === "ArrowDown") { cursor = Math.min(cells(items[at]).length - 1, cursor + 1); paint(); }
    else if (k === "ArrowUp") { cursor = Math.max(0, cursor - 1); paint(); }
    else if (k === "Backspace") {
      const td = cells(items[at])[cursor];
      if (td) { delete label(items[at].dataset.key).scores[td.dataset.criterion + "|" + td.dataset.side]; save(); paint(); }
    }
    else if (k === "d") download();
    else if (k === "?") $("#help").hidden = !$("#help").hidden;
    else return;
    ev.preventDefault();
  });

  document.addEventListener("click", (ev) => {
    const t = ev.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.matches("button[data-pref]")) prefer(t.dataset.pref);
    else if (t.matches("td.cell")) { cursor = cells(items[at]).indexOf(t); paint(); }
    else if (t.matches("input.golden")) { ev.preventDefault(); golden(); }
    else if (t.id === "download") download();
    else if (t.id === "prev") move(-1);
    else if (t.id === "next") move(1);
  });

  document.addEventListener("input", (ev) => {
    const t = ev.target;
    if (t instanceof HTMLTextAreaElement && t.matches("textarea.expected")) {
      label(items[at].dataset.key).expected = t.value;
      save();
    }
  });

  paint();
  document.title = `ready: ${items.length} pairs`;
})();
