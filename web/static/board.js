// Progressive touches for the 看板's pages; every page works without them.
(function () {
  "use strict";
  // Filters apply as soon as a choice is made (the 筛选 button stays for keyboards and for the search box).
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () {
      var page = select.form.querySelector("input[name=page]");
      if (page) { page.value = "1"; }
      select.form.submit();
    });
  });
  // On a wide screen the filters have room: show them.
  if (window.matchMedia("(min-width: 720px)").matches) {
    document.querySelectorAll("details[data-open-wide]").forEach(function (details) { details.open = true; });
  }
})();
