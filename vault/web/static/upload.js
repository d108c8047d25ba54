// Comfort only: the deposit form works without this file (a plain streamed file field).
// With it: drag and drop, a progress bar, and an upload that resumes after a dropped
// connection, over tus 1.0 at /uploads (docs/web.md "Resumable uploads"). No library.
"use strict";
(function () {
  var form = document.getElementById("deposit-form");
  if (!form || !window.XMLHttpRequest || !window.Blob) { return; }
  var input = document.getElementById("file");
  var zone = document.getElementById("drop-zone");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var words = form.dataset;
  // The server keeps every byte of a PATCH cut short, so a larger one loses nothing to a drop,
  // and each request has a fixed cost (bench/RESULTS.md, 2026-12-07 16:46 and 17:00).
  var CHUNK = 16 * 1024 * 1024;
  var RETRIES = 30;
  var signedNow = false;  // this upload carries a signed statement

  function say(text) { status.textContent = text; }

  if (zone) {
    zone.hidden = false;
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length === 1) {
        input.files = event.dataTransfer.files;
        say(words.chosen + " " + input.files[0].name);
      }
    });
  }

  // Deposit fields as tus Upload-Metadata: "key base64,key base64" (UTF-8 first).
  function b64(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary);
  }
  // A signed statement's two files, read as text (each a few KiB at most), or null.
  async function statementOf() {
    var statement = document.getElementById("statement");
    var signature = document.getElementById("signature");
    var s = statement && statement.files && statement.files[0];
    var g = signature && signature.files && signature.files[0];
    if (!s && !g) { return null; }
    return { statement: s ? await s.text() : "", signature: g ? await g.text() : "" };
  }
  function metadata(file, signed) {
    var data = new FormData(form);
    var fields = {};
    ["case", "kind", "title", "language"].forEach(function (name) {
      var value = data.get(name);
      if (value) { fields[name] = value; }
    });
    ["consent", "tags"].forEach(function (name) {
      var all = data.getAll(name);
      if (all.length) { fields[name] = all.join(","); }
    });
    fields.filename = file.name;
    if (signed) {
      ["statement", "signature"].forEach(function (name) {
        if (signed[name]) { fields[name] = signed[name]; }
      });
    }
    return Object.keys(fields).map(function (k) { return k + " " + b64(fields[k]); }).join(",");
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      xhr.setRequestHeader("Tvault-Csrf", words.csrf);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      }
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = function () { reject(new Error("network")); };
      xhr.send(body);
    });
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function refused(xhr) {
    var known = { 403: words.forbidden, 409: words.conflict, 413: words.tooLarge,
                  422: signedNow ? words.badStatement : words.badField };
    var error = new Error("refused");
    error.message = known[xhr.status] || words.failed;
    error.final = true;
    return error;
  }

  async function send(url, file) {
    var offset = 0;
    var failures = 0;
    while (true) {
      try {
        var head = await request("HEAD", url, {}, null);
        if (head.status !== 200) { throw refused(head); }
        offset = parseInt(head.getResponseHeader("Upload-Offset"), 10);
        while (offset < file.size) {
          var start = offset;
          var piece = file.slice(start, Math.min(start + CHUNK, file.size));
          var done = await request(
            "PATCH", url,
            { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(start) },
            piece,
            function (loaded) { bar.value = start + loaded; }
          );
          if (done.status !== 204) { throw refused(done); }
          offset = parseInt(done.getResponseHeader("Upload-Offset"), 10);
          bar.value = offset;
          failures = 0;
          say(words.sending);
          var item = done.getResponseHeader("Tvault-Item");
          if (item) { return item; }
        }
        throw refused({ status: 0 });
      } catch (error) {
        if (error.final || ++failures > RETRIES) { throw error; }
        // The connection dropped: ask the server where to resume, after a pause.
        say(words.retrying);
        await wait(Math.min(30000, 1000 * failures));
      }
    }
  }

  form.addEventListener("submit", async function (event) {
    var file = input.files && input.files[0];
    if (!file || !form.checkValidity()) { return; }  // the browser's own checks and messages
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    bar.hidden = false;
    bar.max = file.size;
    bar.value = 0;
    say(words.sending);
    try {
      var signed = await statementOf();
      signedNow = signed !== null;
      var created = await request(
        "POST", "/uploads",
        { "Upload-Length": String(file.size), "Upload-Metadata": metadata(file, signed) }, null
      );
      if (created.status !== 201) { throw refused(created); }
      var item = await send(created.getResponseHeader("Location"), file);
      say(words.done);
      window.location.assign("/items/" + encodeURIComponent(item));
    } catch (error) {
      say(error.final ? error.message : words.failed);
      button.disabled = false;
    }
  });
})();
