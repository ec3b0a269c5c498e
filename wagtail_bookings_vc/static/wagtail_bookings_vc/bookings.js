/* wagtail-bookings-vc: optional progressive enhancement of the booking widget.
 *
 * Without this file every control is a plain link or GET form and works as is.
 * With it, the week links and the filters (time zone, staff member) replace the
 * widget's free times in place instead of reloading the page, and the change is
 * announced in a live region; the times are shown in the browser's time zone from the
 * first visit, and the confirmation form offers that zone; picking no time gets a
 * message tied to the times; and the Join buttons of video meetings start working
 * when the meeting opens, and open the meeting by themselves at its start while the
 * page stays open.
 */
(function () {
    "use strict";

    if (window.bvcBookingsEnhanced) {
        return; // The script may be included once per widget on a page.
    }
    window.bvcBookingsEnhanced = true;
    document.documentElement.classList.add("bvc-js");

    // The visitor's time zone as the browser knows it (an IANA name), or "".
    function browserZone() {
        try {
            return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
        } catch (error) {
            return "";
        }
    }

    function hasOption(select, value) {
        return Array.prototype.some.call(select.options, function (option) {
            return option.value === value;
        });
    }

    function words(element) {
        return element ? element.textContent.replace(/\s+/g, " ").trim() : "";
    }

    // Replace a widget's free times with those at `url`, without reloading the page.
    // options: push (a new history entry) or replace (update the current one),
    // focus (move to the week heading: the link that was used may be gone).
    var loading = new WeakMap();
    function load(widget, url, options) {
        options = options || {};
        var region = widget.querySelector("[data-bvc-region]");
        var status = widget.querySelector("[data-bvc-status]");
        if (!region || !window.fetch || !window.DOMParser) {
            window.location.href = url;
            return;
        }
        // Only the latest request counts when several overlap.
        var ticket = (loading.get(widget) || 0) + 1;
        loading.set(widget, ticket);
        region.setAttribute("aria-busy", "true");
        fetch(url, { credentials: "same-origin" })
            .then(function (response) {
                if (!response.ok) {
                    throw new Error(String(response.status));
                }
                return response.text();
            })
            .then(function (html) {
                if (loading.get(widget) !== ticket) {
                    return;
                }
                var doc = new DOMParser().parseFromString(html, "text/html");
                var fresh = doc.getElementById(widget.id);
                var freshRegion = fresh && fresh.querySelector("[data-bvc-region]");
                if (!freshRegion) {
                    window.location.href = url;
                    return;
                }
                region.innerHTML = freshRegion.innerHTML;
                region.removeAttribute("aria-busy");
                // The filter form's hidden fields serve pages without this script; keep
                // them in step anyway.
                var form = widget.querySelector("form[data-bvc-filter]");
                var freshForm = fresh.querySelector("form[data-bvc-filter]");
                if (form && freshForm) {
                    Array.prototype.forEach.call(form.querySelectorAll("input[type=hidden]"), function (input) {
                        input.remove();
                    });
                    Array.prototype.forEach.call(freshForm.querySelectorAll("input[type=hidden]"), function (input) {
                        form.insertBefore(document.importNode(input, true), form.firstChild);
                    });
                }
                if (options.push) {
                    window.history.pushState({ bvc: true }, "", url);
                } else if (options.replace) {
                    window.history.replaceState({ bvc: true }, "", url);
                }
                // Announce the week, its number of free times and their zone.
                var heading = region.querySelector("[data-bvc-focus]");
                if (status) {
                    status.textContent = [words(heading), words(region.querySelector("[data-bvc-summary]"))]
                        .filter(Boolean)
                        .join(". ");
                }
                if (options.focus && heading) {
                    heading.focus();
                }
            })
            .catch(function () {
                if (loading.get(widget) === ticket) {
                    window.location.href = url;
                }
            });
    }

    // The widget's URL with the filter form's choices (time zone, staff member).
    function filterUrl(widget, form) {
        var url = new URL(window.location.href);
        Array.prototype.forEach.call(form.querySelectorAll("select[name]"), function (select) {
            if (select.value) {
                url.searchParams.set(select.name, select.value);
            } else {
                url.searchParams.delete(select.name);
            }
        });
        url.hash = widget.id;
        return url.toString();
    }

    function remember() {
        if (!window.history.state) {
            window.history.replaceState({ bvc: true }, "");
        }
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
        remember();
        load(widget, link.href, { push: true, focus: true });
    });

    // A select of the filter form shows the new times by itself, a moment after the
    // last change: arrowing through a closed select changes it at every step.
    var pending = null;
    document.addEventListener("change", function (event) {
        var select = event.target.closest && event.target.closest("[data-bvc-autosubmit]");
        if (select && select.form) {
            window.clearTimeout(pending);
            pending = window.setTimeout(function () {
                // requestSubmit runs the form's submit handler below.
                if (select.form.requestSubmit) {
                    select.form.requestSubmit();
                } else {
                    select.form.submit();
                }
            }, 350);
        }
        // A picked time clears the "pick a time first" error.
        var slot = event.target.closest && event.target.closest("[data-bvc-slot]");
        if (slot && slot.form) {
            showSlotError(slot.form, false);
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
        window.clearTimeout(pending);
        remember();
        load(widget, filterUrl(widget, form), { push: true });
    });

    // Submitting the free times without a pick: say so next to them (instead of the
    // browser's bubble), tie the message to the time buttons and put focus on the first.
    function showSlotError(form, show) {
        var error = form.querySelector("[data-bvc-slot-error]");
        if (!error) {
            return;
        }
        error.hidden = !show;
        error.setAttribute("role", show ? "alert" : "none");
        Array.prototype.forEach.call(form.querySelectorAll("[data-bvc-slot]"), function (input) {
            if (show) {
                input.setAttribute("aria-describedby", error.id);
            } else {
                input.removeAttribute("aria-describedby");
            }
        });
    }

    document.addEventListener(
        "invalid",
        function (event) {
            var input = event.target;
            if (!input.matches || !input.matches("[data-bvc-slot]") || !input.form) {
                return;
            }
            event.preventDefault();
            var first = input.form.querySelector("[data-bvc-slot]");
            if (input === first) {
                showSlotError(input.form, true);
                first.focus();
            }
        },
        true
    );

    // First visit: show the times in the browser's zone, and preselect it as the
    // member's zone on the confirmation form.
    var zone = browserZone();
    if (zone) {
        Array.prototype.forEach.call(document.querySelectorAll("[data-bvc-widget]"), function (widget) {
            var select = widget.querySelector("select[data-bvc-zone-auto]");
            if (!select || !widget.id || select.value === zone || !hasOption(select, zone)) {
                return;
            }
            select.value = zone;
            load(widget, filterUrl(widget, select.form), { replace: true });
        });
        Array.prototype.forEach.call(document.querySelectorAll("select[data-bvc-detect-zone]"), function (select) {
            if (hasOption(select, zone)) {
                select.value = zone;
            }
        });
    }

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
