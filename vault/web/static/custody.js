// The custody timeline's "verify", inside the browser (docs/web.md "Custody verification").
// Without this file the form posts and the server checks; with it, the browser fetches the
// latest signed checkpoint, the log key and each entry's RFC 9162 inclusion proof, and checks
// them itself with WebCrypto: the checkpoint's Ed25519 signature (C2SP signed-note) and each
// entry's leaf hash and audit path up to the signed root. No library, nothing from another
// origin. Messages come translated from the page (data-* attributes of the form).
"use strict";
(function () {
  var encoder = new TextEncoder();
  var SIGNATURE_PREFIX = "\u2014 ";
  var ED25519 = 1;

  function fail(reason) {
    var error = new Error(reason);
    error.reason = reason;
    return error;
  }

  // Standard base64 to bytes; a non-canonical spelling is refused (as the vault refuses it).
  function b64(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
      throw fail("bad base64");
    }
    var raw = atob(text);
    if (btoa(raw) !== text) { throw fail("non-canonical base64"); }
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function concat() {
    var total = 0, i;
    for (i = 0; i < arguments.length; i++) { total += arguments[i].length; }
    var out = new Uint8Array(total), at = 0;
    for (i = 0; i < arguments.length; i++) { out.set(arguments[i], at); at += arguments[i].length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) { return false; }
    var diff = 0;
    for (var i = 0; i < a.length; i++) { diff |= a[i] ^ b[i]; }
    return diff === 0;
  }

  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  // RFC 9162 2.1.1: a leaf is hashed after 0x00, two children after 0x01.
  function leafHash(bytes) { return sha256(concat(new Uint8Array([0]), bytes)); }
  function nodeHash(left, right) { return sha256(concat(new Uint8Array([1]), left, right)); }

  // RFC 9162 2.1.3.2: the root that leaf `index` of a tree of `size` and its audit path give;
  // null when the proof does not fit the index and size (too long, too short, a bad hash).
  async function rootFromInclusion(index, size, leaf, proof) {
    if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
      return null;
    }
    if (leaf.length !== 32 || proof.some(function (h) { return h.length !== 32; })) { return null; }
    // Numbers up to 2^53 and shifts by division: JavaScript's bit operators stop at 32 bits.
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < proof.length; i++) {
      if (sn === 0) { return null; }
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(proof[i], r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, proof[i]);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  async function verifyInclusion(index, size, leaf, proof, root) {
    if (root.length !== 32) { return false; }
    var computed = await rootFromInclusion(index, size, leaf, proof);
    return computed !== null && equal(computed, root);
  }

  // `<name>+<8 hex digits key ID>+<base64(0x01 || 32-byte key)>`; the ID must match.
  async function parseVerifierKey(vkey) {
    var parts = String(vkey).trim().split("+");
    if (parts.length < 3 || !/^[0-9a-f]{8}$/.test(parts[1])) { throw fail("bad verifier key"); }
    var name = parts[0], id = parts[1], raw = b64(parts.slice(2).join("+"));
    if (!name || /\s/.test(name) || raw.length !== 33 || raw[0] !== ED25519) {
      throw fail("not an Ed25519 verifier key");
    }
    var keyId = (await sha256(concat(encoder.encode(name + "\n"), raw))).slice(0, 4);
    if (hex(keyId) !== id) { throw fail("the verifier key's ID does not match"); }
    return { name: name, keyId: keyId, publicKey: raw.slice(1) };
  }

  // C2SP signed-note: the text, then an empty line, then `— <name> <base64(key ID || sig)>`
  // lines. Returns the text when the key `vkey` signed it; throws otherwise. Signatures by
  // other keys are ignored; a failing one by this key rejects the note.
  async function openNote(note, vkey) {
    var key = await parseVerifierKey(vkey);
    if (typeof note !== "string" || note.slice(-1) !== "\n") { throw fail("malformed note"); }
    var cut = note.lastIndexOf("\n\n");
    if (cut < 0) { throw fail("malformed note"); }
    var text = note.slice(0, cut + 1);
    var lines = note.slice(cut + 2).split("\n").slice(0, -1);
    var publicKey = await crypto.subtle.importKey(
      "raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    var verified = false;
    for (var i = 0; i < lines.length; i++) {
      if (lines[i].indexOf(SIGNATURE_PREFIX) !== 0) { throw fail("malformed note"); }
      var fields = lines[i].slice(SIGNATURE_PREFIX.length).split(" ");
      if (fields.length !== 2) { throw fail("malformed note"); }
      var raw = b64(fields[1]);
      if (fields[0] !== key.name || !equal(raw.slice(0, 4), key.keyId)) { continue; }
      var ok = raw.length === 68 && await crypto.subtle.verify(
        { name: "Ed25519" }, publicKey, raw.slice(4), encoder.encode(text));
      if (!ok) { throw fail("signature"); }
      verified = true;
    }
    if (!verified) { throw fail("signature"); }
    return text;
  }

  // C2SP tlog-checkpoint: origin, tree size and base64 root, each on its own line, in a note
  // the log key signed. Returns {origin, size, root}; throws otherwise.
  async function openCheckpoint(note, vkey) {
    var key = await parseVerifierKey(vkey);
    var body = (await openNote(note, vkey)).split("\n");
    if (body.length !== 4 || !/^(0|[1-9][0-9]*)$/.test(body[1])) { throw fail("malformed checkpoint"); }
    var root = b64(body[2]);
    var size = Number(body[1]);
    if (root.length !== 32 || !Number.isSafeInteger(size)) { throw fail("malformed checkpoint"); }
    if (body[0] !== key.name) { throw fail("the checkpoint is of another log"); }
    return { origin: body[0], size: size, root: root };
  }

  // Does this browser's WebCrypto verify Ed25519? RFC 8032 test 1 (empty message) must pass,
  // and the same signature with one bit changed must fail.
  async function ed25519Works() {
    if (!window.crypto || !crypto.subtle) { return false; }
    var pub = new Uint8Array("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
      .match(/../g).map(function (h) { return parseInt(h, 16); }));
    var sig = new Uint8Array(("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
      "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
      .match(/../g).map(function (h) { return parseInt(h, 16); }));
    try {
      var key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
      var good = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, new Uint8Array(0));
      sig[0] ^= 1;
      var bad = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, new Uint8Array(0));
      return good === true && bad === false;
    } catch (e) {
      return false;
    }
  }

  // For a reader who wants to check by hand in the console, and for the tests.
  window.tvaultCustody = {
    b64: b64,
    leafHash: leafHash,
    openNote: openNote,
    rootFromInclusion: rootFromInclusion,
    verifyInclusion: verifyInclusion,
    openCheckpoint: openCheckpoint,
    ed25519Works: ed25519Works
  };

  var form = document.getElementById("custody-verify");
  if (!form) { return; }
  var msg = form.dataset;
  var panel = document.getElementById("browser-check");
  var summary = document.getElementById("browser-check-summary");
  var keyLine = document.getElementById("browser-check-key");
  var column = document.querySelectorAll(".browser-outcome");

  function say(text, outcome) {
    summary.textContent = text;
    panel.className = "message outcome-" + outcome;
    panel.hidden = false;
  }

  function fallBack(reason) {
    // The server checks instead, and its page says why the browser did not.
    form.elements.browser.value = reason;
    form.submit();
  }

  function mark(row, outcome, text) {
    var cell = row.querySelector(".browser-outcome");
    cell.textContent = text;
    cell.className = "browser-outcome outcome-" + outcome;
  }

  // The entry the server gave must be the one the page shows on that row.
  function sameAsShown(entry, row, item) {
    var cells = row.querySelectorAll("td");
    var shownTime = entry.time.slice(0, 19).replace("T", " ");
    return entry.item === item && String(entry.seq) === cells[0].textContent &&
      shownTime === cells[1].textContent && entry.actor === cells[2].textContent &&
      entry.action === cells[3].textContent;
  }

  async function checkRow(row, given, head, item) {
    var seq = Number(row.dataset.seq);
    if (head === null || seq >= head.size) {
      mark(row, "not-yet", msg.entryNotYet);
      return "not-yet";
    }
    if (!given || !given.proof) {
      mark(row, "failed", msg.entryNoProof);
      return "failed";
    }
    var leaf;
    if (given.entry !== null) {
      var entry = JSON.parse(given.entry);
      if (!sameAsShown(entry, row, item)) {
        mark(row, "failed", msg.entryDiffers);
        return "failed";
      }
      leaf = await leafHash(encoder.encode(given.entry));
    } else {
      leaf = b64(given.leaf_hash);
    }
    var ok = given.proof.size === head.size && await verifyInclusion(
      seq, head.size, leaf, given.proof.hashes.map(b64), head.root);
    if (!ok) {
      mark(row, "failed", msg.entryFailed);
      return "failed";
    }
    mark(row, "proven", given.entry !== null ? msg.entryVerified : msg.entryVerifiedHash);
    return "proven";
  }

  async function check() {
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      if (!(await ed25519Works())) { fallBack("no-ed25519"); return; }
      say(msg.checking, "checking");
      var data;
      try {
        var response = await fetch(form.dataset.proofs, {
          credentials: "same-origin", headers: { "Accept": "application/json" }
        });
        if (!response.ok) { throw fail("status " + response.status); }
        data = await response.json();
      } catch (e) {
        fallBack("no-proofs");
        return;
      }
      column.forEach(function (c) { c.hidden = false; });
      keyLine.textContent = data.log_key;
      keyLine.parentNode.hidden = false;
      var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-seq]"));
      var given = {};
      data.entries.forEach(function (e) { given[e.seq] = e; });
      var head = null;
      if (data.checkpoint !== null) {
        try {
          head = await openCheckpoint(data.checkpoint, data.log_key);
        } catch (e) {
          rows.forEach(function (row) { mark(row, "failed", msg.entryFailed); });
          say(msg.badCheckpoint, "failed");
          return;
        }
      }
      var outcomes = [];
      for (var i = 0; i < rows.length; i++) {
        try {
          outcomes.push(await checkRow(rows[i], given[rows[i].dataset.seq], head, form.dataset.item));
        } catch (e) {
          mark(rows[i], "failed", msg.entryFailed);
          outcomes.push("failed");
        }
      }
      if (head === null) {
        say(msg.noCheckpoint, "not-yet");
      } else if (outcomes.indexOf("failed") >= 0) {
        say(msg.someFailed.replace("%(size)s", head.size), "failed");
      } else if (outcomes.indexOf("not-yet") >= 0) {
        say(msg.someNotYet.replace("%(size)s", head.size), "not-yet");
      } else {
        say(msg.allVerified.replace("%(size)s", head.size), "proven");
      }
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", function (event) {
    if (form.elements.browser.value) { return; }  // falling back: the server checks
    event.preventDefault();
    check();
  });
})();
