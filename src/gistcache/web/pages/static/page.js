// gistcache's search page. Without this module the page works as plain HTML forms;
// with it, a search streams through POST /api/v1/search (NDJSON) and each gist is
// shown as it arrives, in the list's order. The markup built here is the markup of
// templates/_results.html (the browser tests compare the two); it is made with DOM
// calls and textContent only, and the marks come from the server's ranges (code
// points), never from running the pattern here.

const form = document.getElementById("search");
const results = document.getElementById("results");
const progress = document.getElementById("progress");
const pattern = document.getElementById("q");

let running = null; // the AbortController of the search being streamed

// "/" focuses the pattern, unless the person is typing somewhere
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || !pattern) return;
  const target = event.target;
  if (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable)
  ) {
    return;
  }
  event.preventDefault();
  pattern.focus();
  pattern.select();
});

if (form && results) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = formParams();
    const link = "/-/search?" + params.toString();
    history.pushState({ search: params.toString() }, "", link);
    search(params, link);
  });
  window.addEventListener("popstate", () => {
    const params = new URLSearchParams(location.search);
    fillForm(params);
    if (location.pathname === "/-/search" && params.get("q")) {
      search(params, location.pathname + location.search);
    } else {
      stop();
      clearResults();
      results.hidden = true;
    }
  });
}

function formParams() {
  // what the browser itself would put in the address for this GET form
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    params.append(name, typeof value === "string" ? value : "");
  }
  return params;
}

function fillForm(params) {
  for (const input of form.querySelectorAll("input")) {
    if (input.type === "checkbox") {
      input.checked = params.get(input.name) === input.value;
    } else {
      input.value = params.get(input.name) ?? (input.name === "context" ? "0" : "");
    }
  }
}

function stop() {
  if (running) running.abort();
  running = null;
}

function truthy(value) {
  return ["1", "on", "true", "yes"].includes((value ?? "").toLowerCase());
}

async function search(params, link) {
  stop();
  const controller = new AbortController();
  running = controller;
  const request = {
    username: (params.get("user") ?? "").trim(),
    pattern: params.get("q") ?? "",
    ignore_case: truthy(params.get("i")),
    literal: truthy(params.get("literal")),
  };
  const context = (params.get("context") ?? "").trim();
  if (context !== "") {
    if (!/^[0-9]{1,9}$/.test(context)) return showOnServer(link);
    request.context = Number(context);
  }
  const glob = (params.get("glob") ?? "").trim();
  if (glob) request.filename = glob;
  document.title = `${request.pattern} in ${request.username}'s gists · gistcache`;

  clearResults();
  results.hidden = false;
  summary().textContent = "searching…";
  showProgress("asking GitHub for the list of gists…");

  let response;
  try {
    response = await fetch("/api/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify(request),
      signal: controller.signal,
    });
  } catch (error) {
    if (!controller.signal.aborted) showOnServer(link);
    return;
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok) return showOnServer(link); // the server says it in words
  try {
    if (type.startsWith("application/x-ndjson")) {
      await readStream(response, controller, link, request.username);
    } else {
      // a server without the stream: the whole answer at once
      const answer = await response.json();
      answer.matches.forEach((gist, index) => insertGist(index, gist));
      for (const entry of answer.skipped) addSkipped(entry);
      finish(answer.total, request.username);
    }
  } catch (error) {
    if (!controller.signal.aborted) showOnServer(link);
  }
}

async function readStream(response, controller, link, username) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ended = false;
  const handle = (text) => {
    if (!text.trim() || controller.signal.aborted) return;
    const event = JSON.parse(text);
    if (event.event === "progress") {
      showProgress(`fetched ${event.files_done} of ${event.files_total} files`);
    } else if (event.event === "match") {
      insertGist(event.index, event.gist);
    } else if (event.event === "skipped") {
      addSkipped(event);
    } else if (event.event === "done") {
      ended = true;
      finish(event.total, username);
    } else if (event.event === "error") {
      ended = true;
      showOnServer(link);
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      handle(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
  handle(buffer);
  if (!ended && !controller.signal.aborted) showOnServer(link); // cut off: ask the server
}

// the server renders the page of this search, errors in words included
function showOnServer(link) {
  stop();
  location.replace(link);
}

function showProgress(text) {
  progress.hidden = false;
  progress.textContent = text;
}

function summary() {
  return results.querySelector(".summary");
}

function clearResults() {
  for (const box of document.querySelectorAll("#trouble")) box.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
  results.querySelector(".gists").replaceChildren();
  results.querySelector(".freshness").textContent = "";
  const skipped = results.querySelector(".skipped");
  skipped.querySelector("ul").replaceChildren();
  skipped.hidden = true;
  const paging = results.querySelector(".paging");
  if (paging) paging.remove();
  progress.hidden = true;
  progress.textContent = "";
}

async function finish(total, username) {
  running = null;
  progress.hidden = true;
  summary().textContent = `${plural(total, "gist")} ${total === 1 ? "matches" : "match"}`;
  try {
    const answer = await fetch("/-/freshness?" + new URLSearchParams({ user: username }));
    if (answer.ok) results.querySelector(".freshness").textContent = (await answer.json()).text;
  } catch (error) {
    // the results stand without it
  }
}

// --- the markup of templates/_results.html ----------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function httpUrl(value) {
  return value && (value.startsWith("https://") || value.startsWith("http://")) ? value : "#";
}

function when(timestamp) {
  // "2024-01-01T10:20:30Z" -> "2024-01-01 10:20 UTC", as the server writes it
  return `${timestamp.slice(0, 10)} ${timestamp.slice(11, 16)} UTC`;
}

// text cut into [piece, marked] by ranges counted in code points: a JavaScript string
// counts UTF-16 units, so the text is split into code points first
export function marked(text, ranges) {
  const points = Array.from(text);
  const pieces = [];
  let at = 0;
  for (const [rawStart, rawEnd] of ranges) {
    const start = Math.max(rawStart, at);
    const end = Math.min(rawEnd, points.length);
    if (start >= end) continue;
    if (start > at) pieces.push([points.slice(at, start).join(""), false]);
    pieces.push([points.slice(start, end).join(""), true]);
    at = end;
  }
  if (at < points.length || pieces.length === 0) pieces.push([points.slice(at).join(""), false]);
  return pieces;
}

function codeLine(line, kind, url, ranges) {
  const number = String(line.line_number);
  const label = url
    ? el("a", { class: "ln", href: httpUrl(url), "aria-label": `line ${number} on GitHub` }, number)
    : el("span", { class: "ln" }, number);
  const code = el("code");
  for (const [piece, hit] of marked(line.text, ranges)) {
    code.append(hit ? el("mark", {}, piece) : document.createTextNode(piece));
  }
  return el("li", { class: `line ${kind}` }, label, code);
}

function fileMatch(file) {
  const lines = el("ol", { class: "lines" });
  for (const line of file.lines) {
    for (const c of line.before ?? []) lines.append(codeLine(c, "context", "", []));
    lines.append(codeLine(line, "match", line.url ?? "", line.ranges ?? []));
    for (const c of line.after ?? []) lines.append(codeLine(c, "context", "", []));
  }
  const section = el(
    "section",
    { class: "file" },
    el(
      "h3",
      { class: "file-head" },
      el("span", { class: "file-name" }, file.filename),
      " ",
      el("span", { class: "file-lang" }, file.language ?? ""),
      " ",
      el("span", { class: "file-count" }, plural(file.match_count, "matching line")),
    ),
    lines,
  );
  const more = file.match_count - file.lines.length;
  if (more > 0) section.append(el("p", { class: "more" }, plural(more, "more matching line")));
  return section;
}

function gistMatch(gist, index) {
  const item = el(
    "li",
    { class: "gist", "data-index": String(index) },
    el(
      "h2",
      { class: "gist-title" },
      el("a", { href: httpUrl(gist.html_url) }, gist.description || "(no description)"),
    ),
    el(
      "p",
      { class: "gist-meta" },
      "updated ",
      el("time", { datetime: gist.updated_at }, when(gist.updated_at)),
    ),
  );
  for (const file of gist.files) item.append(fileMatch(file));
  return item;
}

function insertGist(index, gist) {
  const list = results.querySelector(".gists");
  const next = Array.from(list.children).find((item) => Number(item.dataset.index) > index);
  list.insertBefore(gistMatch(gist, index), next ?? null);
}

function addSkipped(entry) {
  const reasons = JSON.parse(results.dataset.skipReasons || "{}");
  const skipped = results.querySelector(".skipped");
  skipped.hidden = false;
  skipped.querySelector("ul").append(
    el(
      "li",
      {},
      el("span", { class: "skip-file" }, entry.filename || "the rest of the file list"),
      " in gist ",
      el("code", {}, entry.id),
      `: ${reasons[entry.reason] ?? entry.reason}`,
    ),
  );
}
