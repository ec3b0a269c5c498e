/* wagtail-bookings-vc: optional progressive enhancement of the booking widget.
 *
 * Without this file every control is a plain link or GET form and works as is.
 * With it, the week links and the staff filter replace the widget's free times in
 * place instead of reloading the page, and the change is announced to screen readers;
 * and the Join buttons of video meetings start working when the meeting opens, and
 * open the meeting by themselves at its start while the page stays open.
 */
(function () {
    "use strict";

    if (window.bvcBookingsEnhanced) {
        return; // The script may be included once per widget on a page.
    }
    window.bvcBookingsEnhanced = true;
    document.documentElement.classList.add("bvc-js");

    function load(widget, url, push) {
        var region = widget.querySelector("[data-bvc-region]");
        var status = widget.querySelector("[data-bvc-status]");
        if (!region || !window.fetch || !window.DOMParser) {
            window.location.href = url;
            return;
        }
        region.setAttribute("aria-busy", "true");
        fetch(url, { credentials: "same-origin" })
            .then(function (response) {
                if (!response.ok) {
                    throw new Error(String(response.status));
                }
                return response.text();
            })
            .then(function (html) {
                var doc = new DOMParser().parseFromString(html, "text/html");
                var fresh = doc.getElementById(widget.id);
                var freshRegion = fresh && fresh.querySelector("[data-bvc-region]");
                if (!freshRegion) {
                    window.location.href = url;
                    return;
                }
                region.innerHTML = freshRegion.innerHTML;
                region.removeAttribute("aria-busy");
                if (push) {
                    window.history.pushState({ bvc: true }, "", url);
                }
                // Announce the new week and its number of free times, then continue from there.
                var focus = region.querySelector("[data-bvc-focus]");
                var summary = region.querySelector("[data-bvc-summary]");
                if (status) {
                    status.textContent = [focus, summary]
                        .filter(Boolean)
                        .map(function (element) {
                            return element.textContent.replace(/\s+/g, " ").trim();
                        })
                        .join(". ");
                }
                if (focus) {
                    focus.focus();
                }
            })
            .catch(function () {
                window.location.href = url;
            });
    }

    document.addEventListener("click", function (event) {
        var link = event.target.closest && event.target.closest("a[data-bvc-nav]");
        if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
            return;
        }
        var widget = link.closest("[data-bvc-widget]");
        if (!widget || !widget.id) {
            return;
        }
        event.preventDefault();
        if (!window.history.state) {
            window.history.replaceState({ bvc: true }, "");
        }
        load(widget, link.href, true);
    });

    document.addEventListener("change", function (event) {
        var select = event.target.closest && event.target.closest("[data-bvc-autosubmit]");
        if (select && select.form) {
            // requestSubmit runs the form's submit handler below (and its validation).
            if (select.form.requestSubmit) {
                select.form.requestSubmit();
            } else {
                select.form.submit();
            }
        }
    });

    document.addEventListener("submit", function (event) {
        var form = event.target;
        if (!form.matches || !form.matches("form[data-bvc-filter]")) {
            return;
        }
        var widget = form.closest("[data-bvc-widget]");
        if (!widget || !widget.id) {
            return;
        }
        event.preventDefault();
        var url = new URL(window.location.href);
        url.search = new URLSearchParams(new FormData(form)).toString();
        url.hash = widget.id;
        if (!window.history.state) {
            window.history.replaceState({ bvc: true }, "");
        }
        load(widget, url.toString(), true);
    });

    // Join buttons: greyed until the meeting opens, then a working link. At the booked
    // start the meeting opens by itself, but only on a page that was already open then:
    // coming back to the page later never throws anyone into a meeting.
    var joins = Array.prototype.slice.call(document.querySelectorAll("[data-bvc-join-link]"));
    if (joins.length) {
        var loadedAt = Date.now();
        var joinedAutomatically = false;
        var checkJoins = function () {
            var now = Date.now();
            joins.forEach(function (join) {
                var href = join.getAttribute("data-href");
                var opensAt = Date.parse(join.getAttribute("data-opens-at"));
                var startsAt = Date.parse(join.getAttribute("data-starts-at"));
                var endsAt = Date.parse(join.getAttribute("data-ends-at"));
                var button = join.querySelector("[data-bvc-join-button]");
                if (!href || !button) {
                    return;
                }
                if (button.getAttribute("aria-disabled") === "true" && now >= opensAt) {
                    button.setAttribute("href", href);
                    button.setAttribute("rel", "noreferrer");
                    button.removeAttribute("aria-disabled");
                    button.removeAttribute("role");
                    button.removeAttribute("tabindex");
                    button.removeAttribute("aria-describedby");
                    var opens = join.querySelector("[data-bvc-join-opens]");
                    if (opens) {
                        opens.hidden = true;
                    }
                }
                if (!joinedAutomatically && startsAt > loadedAt && now >= startsAt && now < endsAt) {
                    joinedAutomatically = true;
                    window.location.assign(href);
                }
            });
        };
        checkJoins();
        window.setInterval(checkJoins, 1000);
    }

    // Entries added above hold no page of their own: show the real page for them.
    window.addEventListener("popstate", function (event) {
        if (event.state && event.state.bvc) {
            window.location.reload();
        }
    });
})();
