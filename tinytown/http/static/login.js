// The login page: the key goes to POST /login once (in the body, never in an address),
// which keeps it in an HttpOnly session cookie; then back to the page that sent us here.
"use strict";

(() => {
  const form = document.getElementById("login");
  const notice = document.getElementById("notice");

  function next() {
    const wanted = new URLSearchParams(location.search).get("next") || "/";
    return /^\/(?![/\\])/.test(wanted) ? wanted : "/"; // a path of this server only
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("key");
    const button = document.getElementById("submit");
    button.disabled = true;
    notice.hidden = true;
    try {
      const response = await fetch("/login", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json", "X-Requested-With": "tinytown-dashboard" },
        body: JSON.stringify({ key: input.value.trim() }),
      });
      if (response.ok) {
        input.value = "";
        location.replace(next());
        return;
      }
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
      notice.textContent = message;
      notice.hidden = false;
    } catch (error) {
      notice.textContent = String(error.message || error);
      notice.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
