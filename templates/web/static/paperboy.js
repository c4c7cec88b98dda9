// paperboy pages: small progressive enhancements. Every page works without this file.
"use strict";

// Pre-fill the time zone from the browser, only where the page asks for it (the subscribe form).
function prefillTimezone() {
  let zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  document.querySelectorAll("select[data-browser-timezone]").forEach((select) => {
    if (zone && Array.from(select.options).some((o) => o.value === zone)) select.value = zone;
  });
}

// Show the weekday choice only for the weekly cadence.
function toggleWeekday() {
  document.querySelectorAll("select[data-cadence]").forEach((cadence) => {
    const weekday = cadence.form && cadence.form.querySelector("[data-weekday]");
    if (!weekday) return;
    const update = () => { weekday.hidden = cadence.value !== "weekly"; };
    cadence.addEventListener("change", update);
    update();
  });
}

// Live preview: post the unsaved form to the preview URL and show the answer.
function livePreview() {
  document.querySelectorAll("form[data-preview-url]").forEach((form) => {
    const target = document.getElementById(form.dataset.previewTarget);
    if (!target) return;
    const box = target.closest(".preview");
    let timer = null;
    let sequence = 0;
    const refresh = async () => {
      const mine = ++sequence;
      if (box) box.classList.add("loading");
      try {
        const response = await fetch(form.dataset.previewUrl, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
        });
        if (mine !== sequence) return; // a newer request is on its way
        target.innerHTML = await response.text(); // server-rendered, autoescaped HTML
        target.dataset.state = response.ok ? "ok" : "error";
      } catch (e) {
        if (mine === sequence) target.dataset.state = "offline";
      } finally {
        if (box && mine === sequence) box.classList.remove("loading");
      }
    };
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 500);
    };
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  prefillTimezone();
  toggleWeekday();
  livePreview();
});
