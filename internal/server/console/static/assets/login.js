// login.js: the login form. POST /api/v1/login sets the session cookie;
// then the page goes to ?next= (a console page) or the dashboard.
"use strict";
(function () {
  const HF = window.Holdfast;
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const button = document.getElementById("login-submit");

  function next() {
    const n = new URLSearchParams(location.search).get("next");
    return n && /^\/console\/[a-z]*$/.test(n) ? n : "/console/";
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    button.disabled = true;
    const body = {
      user: form.elements.user.value.trim(),
      password: form.elements.password.value,
      totp: form.elements.totp.value.trim(),
    };
    try {
      await HF.api("POST", "/login", body);
      location.replace(next());
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong user name, password or one-time code." : err.message;
      error.hidden = false;
      form.elements.password.value = "";
      form.elements.password.focus();
    } finally {
      button.disabled = false;
    }
  });
})();
