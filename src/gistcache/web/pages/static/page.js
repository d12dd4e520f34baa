// gistcache's search page. Without this module the page works as plain HTML forms;
// with it, a search streams through POST /api/v1/search (NDJSON) and each gist is
// shown as it arrives, in the list's order. The markup built here is the markup of
// templates/_results.html (the browser tests compare the two); it is made with DOM
// calls and textContent only, and the marks come from the server's ranges (code
// points), never from running the pattern here.
//
// Live search: once a search for a user has completed (the stream's done event, or the
// server rendered the page with an answer), that user's contents are cached, so while
// the user field still names them, editing the pattern or an option searches again
// after a short pause. A user whose search has not completed is never searched per
// keystroke: that could download a whole account each time.

const form = document.getElementById("search");
const results = document.getElementById("results");
const progress = document.getElementById("progress");
const pattern = document.getElementById("q");
const userField = document.getElementById("user");
const liveHint = document.getElementById("live-hint");

const DEBOUNCE_MS = 275; // after the last keystroke
// the API's names of the request's fields, by the form's
const FORM_FIELDS = { username: "user", pattern: "q", context: "context", filename: "glob" };

let running = null; // the AbortController of the search being streamed
let pending = null; // the timer of a live search waiting for the typing to pause

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

// whether the user field names several users or an organisation (as the server's
// web/pages/form.py several() reads it)
function namesSeveral(value) {
  const user = value.trim();
  return /^org:/i.test(user) || user.split(/[\s,]+/).filter(Boolean).length > 1;
}

if (form && results) {
  updateLive();
  form.addEventListener("submit", (event) => {
    // several users ("a, b" or "a b") or org:NAME: the server renders those results
    if (namesSeveral(userField.value)) return;
    event.preventDefault();
    cancelPending();
    const params = formParams();
    const link = "/-/search?" + params.toString();
    if (location.pathname + location.search === link) {
      history.replaceState({ search: params.toString() }, "", link); // live got there first
    } else {
      history.pushState({ search: params.toString() }, "", link);
    }
    search(params, link);
  });
  form.addEventListener("input", (event) => {
    if (event.target === userField) {
      // another user's contents may not be cached: no search until Enter
      cancelPending();
      updateLive();
      return;
    }
    if (!isLive()) return;
    cancelPending();
    pending = setTimeout(liveSearch, DEBOUNCE_MS);
  });
  window.addEventListener("popstate", () => {
    cancelPending();
    const params = new URLSearchParams(location.search);
    fillForm(params);
    updateLive();
    if (location.pathname === "/-/search" && params.get("q")) {
      search(params, location.pathname + location.search);
    } else {
      stop();
      clearResults();
      results.hidden = true;
    }
  });
}

function currentUser() {
  return userField ? userField.value.trim().toLowerCase() : "";
}

// the user whose last search completed (the server's page says it too, as the
// results' data-cached-user), whose contents are therefore cached
function isLive() {
  const cached = results?.dataset.cachedUser;
  return Boolean(cached) && currentUser() === cached.toLowerCase();
}

// the hint says whether results follow the typing; the pattern's description names it
function updateLive() {
  if (!liveHint) return;
  liveHint.hidden = !isLive();
  describe(pattern);
}

function describe(input) {
  if (!input) return;
  const ids = [];
  if (input.getAttribute("aria-invalid") === "true" && document.getElementById("trouble")) {
    ids.push("trouble");
  }
  if (input === pattern && liveHint && !liveHint.hidden) ids.push("live-hint");
  if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
  else input.removeAttribute("aria-describedby");
}

function cancelPending() {
  if (pending !== null) clearTimeout(pending);
  pending = null;
}

function liveSearch() {
  pending = null;
  if (!isLive()) return;
  const params = formParams();
  if (!params.get("q")) {
    // nothing to look for: no results, no request
    stop();
    clearResults();
    results.hidden = true;
    document.title = "gistcache";
    return;
  }
  search(params, "/-/search?" + params.toString(), true);
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

// A search. An explicit one (the form submitted, Back or Forward) has its address
// already and leaves failures to the server's page; a live one (typing) takes the
// address with history.replaceState once the server has accepted it, and says a
// failure in the page, leaving the form as it was typed and the focus where it is.
async function search(params, link, live = false) {
  stop();
  const controller = new AbortController();
  running = controller;
  const failed = (problem) => {
    if (controller.signal.aborted) return;
    if (live) showTrouble(problem);
    else showOnServer(link);
  };
  const request = {
    username: (params.get("user") ?? "").trim(),
    pattern: params.get("q") ?? "",
    ignore_case: truthy(params.get("i")),
    literal: truthy(params.get("literal")),
  };
  const context = (params.get("context") ?? "").trim();
  if (context !== "") {
    if (!/^[0-9]{1,9}$/.test(context)) {
      const detail = "context lines must be a whole number";
      return failed({ title: "Check the form", detail, field: "context" });
    }
    request.context = Number(context);
  }
  const glob = (params.get("glob") ?? "").trim();
  if (glob) request.filename = glob;
  const title = `${request.pattern} in ${request.username}'s gists · gistcache`;
  const begin = () => {
    clearResults();
    results.hidden = false;
    summary().textContent = "searching…";
  };

  if (!live) {
    document.title = title;
    begin();
    showProgress("asking GitHub for the list of gists…");
  }

  let response;
  try {
    response = await fetch("/api/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify(request),
      signal: controller.signal,
    });
  } catch (error) {
    failed(null);
    return;
  }
  if (controller.signal.aborted) return;
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok) {
    // the server says it in words: a problem+json here, the page on the server
    let problem = null;
    if (live && type.startsWith("application/problem+json")) {
      try {
        problem = await response.json();
      } catch (error) {
        problem = null;
      }
    }
    return failed(problem);
  }
  if (live) {
    // the old results stay until the new search is under way
    history.replaceState({ search: params.toString() }, "", link);
    document.title = title;
    begin();
  }
  try {
    if (type.startsWith("application/x-ndjson")) {
      await readStream(response, controller, failed, request);
    } else {
      // a server without the stream: the whole answer at once
      const answer = await response.json();
      answer.matches.forEach((gist, index) => insertGist(index, gist, request.context ?? 0));
      for (const entry of answer.skipped) addSkipped(entry);
      finish(answer.total, request.username, answer.cut ?? null);
    }
  } catch (error) {
    failed(null);
  }
}

async function readStream(response, controller, failed, request) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ended = false;
  const handle = (text) => {
    if (!text.trim() || controller.signal.aborted) return;
    const event = JSON.parse(text);
    if (event.event === "progress") {
      showProgress(`fetched ${event.files_done} of ${event.files_total} files`);
    } else if (event.event === "match") {
      insertGist(event.index, event.gist, request.context ?? 0);
    } else if (event.event === "skipped") {
      addSkipped(event);
    } else if (event.event === "done") {
      ended = true;
      finish(event.total, request.username, event.cut ?? null);
    } else if (event.event === "error") {
      ended = true;
      failed(event.problem ?? null);
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
  if (!ended) failed(null); // cut off
}

// the server renders the page of this search, errors in words included
function showOnServer(link) {
  stop();
  location.replace(link);
}

// a live search's failure, in the words the server's page would use, in the page's
// trouble box; the field it is about is marked, nothing else changes in the form
function showTrouble(problem) {
  running = null;
  clearResults();
  results.hidden = true;
  let title = problem?.title ?? "The search failed";
  let detail = problem?.detail ?? "The search did not finish. Press Enter to try again.";
  if (problem?.type === "urn:gistcache:problem:invalid-pattern") {
    // as pages/failures.py's problem_message() puts it on the server's page
    title = "RE2 does not accept this pattern";
    detail = `${problem.detail}. Tick “literal” to search for the text as it is.`;
  }
  // a polite status, not an alert: it comes while the person is still typing
  const box = el(
    "section",
    {
      id: "trouble",
      class: "trouble",
      role: "status",
      "data-status": String(problem?.status ?? ""),
    },
    el("h2", {}, title),
    el("p", {}, detail),
  );
  progress.after(box);
  const name = FORM_FIELDS[problem?.field] ?? problem?.field;
  const input = name ? form.querySelector(`[name="${name}"]`) : null;
  if (input && input.type !== "checkbox") {
    input.setAttribute("aria-invalid", "true");
    describe(input);
  }
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
    describe(input);
  }
  results.querySelector(".gists").replaceChildren();
  results.querySelector(".freshness").textContent = "";
  results.querySelector(".cut").hidden = true;
  const skipped = results.querySelector(".skipped");
  skipped.querySelector("ul").replaceChildren();
  skipped.hidden = true;
  const paging = results.querySelector(".paging");
  if (paging) paging.remove();
  progress.hidden = true;
  progress.textContent = "";
}

// the page's words of web/pages/text.py cut_words
function cutWords(cut) {
  const size = `${Number((cut.limit_bytes / (1024 * 1024)).toPrecision(3))} MiB`;
  const shown = cut.lines_cut
    ? "Not every matching line of this gist is listed"
    : cut.listed === 1
      ? "Only the first matching gist is listed"
      : `Only the first ${cut.listed} matching gists are listed`;
  return (
    `${shown}: the answer reached this server's limit of ${size}. Narrow the search ` +
    "(a file-name glob, fewer context lines) to see the rest."
  );
}

async function finish(total, username, cut) {
  running = null;
  const said = results.querySelector(".cut");
  said.textContent = cut ? cutWords(cut) : "";
  said.hidden = !cut;
  results.dataset.cachedUser = username; // its contents are cached now
  updateLive();
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

// a line; one cut to a window (a long line) says so: an ellipsis at each end where the
// line goes on, and the column its text starts at (line_length and column count code
// points, as the text's length does here)
function codeLine(line, kind, url, ranges, column = 1) {
  const number = String(line.line_number);
  const label = url
    ? el("a", { class: "ln", href: httpUrl(url), "aria-label": `line ${number} on GitHub` }, number)
    : el("span", { class: "ln" }, number);
  const code = el("code");
  if (column > 1) {
    code.append(el("span", { class: "column" }, `column ${column}`));
    code.append(el("span", { class: "elided" }, "…"));
  }
  for (const [piece, hit] of marked(line.text, ranges)) {
    code.append(hit ? el("mark", {}, piece) : document.createTextNode(piece));
  }
  const length = line.line_length ?? 0;
  if (length && column - 1 + Array.from(line.text).length < length) {
    code.append(el("span", { class: "elided" }, "…"));
  }
  return el("li", { class: `line ${kind}` }, label, code);
}

// with context lines, groups of lines that do not follow each other are set apart, as
// grep -C prints -- between them
function gap() {
  return el(
    "li",
    { class: "gap" },
    el("span", { "aria-hidden": "true" }, "⋮"),
    el("span", { class: "visually-hidden" }, "lines not shown"),
  );
}

function fileMatch(file, context) {
  const lines = el("ol", { class: "lines" });
  let last = null; // the number of the last line shown
  for (const line of file.lines) {
    const before = line.before ?? [];
    const after = line.after ?? [];
    const first = before.length ? before[0].line_number : line.line_number;
    if (context > 0 && last !== null && first !== last + 1) lines.append(gap());
    for (const c of before) lines.append(codeLine(c, "context", "", []));
    lines.append(codeLine(line, "match", line.url ?? "", line.ranges ?? [], line.column ?? 1));
    for (const c of after) lines.append(codeLine(c, "context", "", []));
    last = after.length ? after[after.length - 1].line_number : line.line_number;
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

function gistMatch(gist, index, context) {
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
  for (const file of gist.files) item.append(fileMatch(file, context));
  return item;
}

function insertGist(index, gist, context) {
  const list = results.querySelector(".gists");
  const next = Array.from(list.children).find((item) => Number(item.dataset.index) > index);
  list.insertBefore(gistMatch(gist, index, context), next ?? null);
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

// "Watch this search": the search in the form now, saved as a watch with the API token
// the person types (sent in a header, never kept); then the watch's page
const watchForm = document.getElementById("watch");
if (watchForm && form) {
  watchForm.hidden = false;
  watchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = watchForm.querySelector(".watch-status");
    const fields = new FormData(form);
    const text = (name) => String(fields.get(name) || "").trim();
    const body = {
      usernames: [text("user")],
      pattern: String(fields.get("q") || ""),
      ignore_case: fields.get("i") === "1",
      literal: fields.get("literal") === "1",
      interval: Number(watchForm.elements.interval.value),
    };
    if (text("context")) body.context = Number(text("context"));
    if (text("glob")) body.filename = text("glob");
    status.textContent = "Saving the watch…";
    try {
      const response = await fetch("/api/v1/watches", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: `Bearer ${watchForm.elements.token.value}`,
        },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (response.status === 201) {
        window.location.assign(answer.page_url);
        return;
      }
      status.textContent = answer.detail || `The server answered ${response.status}.`;
    } catch {
      status.textContent = "The server could not be reached; try again.";
    }
  });
}
