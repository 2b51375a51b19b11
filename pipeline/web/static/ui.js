// fwtriage reviewers' pages: the upload with its progress, and a submission's progress followed live.
// Loaded with `defer` from /static (no inline script: the pages forbid them). Text from the service is put in
// the page with textContent only, never as HTML: file names come from seized devices.
"use strict";

(function () {
  const POLL_MS = 1000;
  const RETRY_MS = 5000;

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function errorMessage(status, text) {
    try {
      return JSON.parse(text).error.message;
    } catch (parseError) {
      return status ? "the service answered " + status : "the service could not be reached";
    }
  }

  function show(element, text) {
    element.textContent = text;
    element.hidden = false;
  }

  // --- upload: multipart POST to the API, with the session's CSRF token as a header ------------------

  function resultItem(submission) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = submission.links.page;
    link.textContent = submission.filename;
    link.className = "mono";
    item.append(link, " — " + submission.state + ", sha256 ");
    const hash = document.createElement("span");
    hash.className = "hash";
    hash.textContent = submission.sha256;
    item.append(hash);
    return item;
  }

  function initUpload(form) {
    const status = document.querySelector("[data-upload-status]");
    const bar = status.querySelector("progress");
    const text = status.querySelector("[data-upload-text]");
    const error = document.querySelector("[data-upload-error]");
    const results = document.querySelector("[data-upload-results]");
    const button = form.querySelector('button[type="submit"]');

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRF-Token", csrfToken());
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", function (progress) {
        if (!progress.lengthComputable) return;
        bar.max = progress.total;
        bar.value = progress.loaded;
        text.textContent = "sent " + Math.floor((100 * progress.loaded) / progress.total) + "%";
      });
      request.addEventListener("load", function () {
        button.disabled = false;
        if (request.status !== 201) {
          status.hidden = true;
          show(error, errorMessage(request.status, request.responseText));
          return;
        }
        text.textContent = "received; triage queued";
        const created = JSON.parse(request.responseText).submissions;
        results.replaceChildren(...created.map(resultItem));
        form.reset();
      });
      request.addEventListener("error", function () {
        button.disabled = false;
        status.hidden = true;
        show(error, errorMessage(0, ""));
      });
      error.hidden = true;
      results.replaceChildren();
      bar.value = 0;
      text.textContent = "sending…";
      status.hidden = false;
      button.disabled = true;
      request.send(new FormData(form));
    });
  }

  // --- a submission in progress: poll its JSON, reload once it is done or failed ----------------------

  function initPoll(live) {
    const url = live.dataset.poll;
    const bar = live.querySelector("progress");
    const text = live.querySelector("[data-progress-text]");
    const state = document.querySelector('[data-testid="state"]');

    function update(submission) {
      if (submission.state === "done" || submission.state === "failed") {
        window.location.reload();
        return;
      }
      state.textContent = submission.state;
      state.className = "state state--" + submission.state;
      const progress = submission.progress || {};
      if (progress.total) {
        bar.max = progress.total;
        bar.value = progress.done;
        text.textContent = progress.done + " of " + progress.total + " done";
      } else {
        bar.removeAttribute("value");  // the stage has not counted its work yet: an indeterminate bar
        text.textContent = "";
      }
      window.setTimeout(poll, POLL_MS);
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.text().then(function (body) {
            if (response.ok) {
              update(JSON.parse(body));
            } else if (response.status >= 500) {
              window.setTimeout(poll, RETRY_MS);
            } else {
              text.textContent = "live updates stopped: " + errorMessage(response.status, body);
            }
          });
        })
        .catch(function () {
          text.textContent = "the service could not be reached; retrying";
          window.setTimeout(poll, RETRY_MS);
        });
    }

    window.setTimeout(poll, POLL_MS);
  }

  document.querySelectorAll("form[data-upload]").forEach(initUpload);
  document.querySelectorAll("[data-poll]").forEach(initPoll);
})();
