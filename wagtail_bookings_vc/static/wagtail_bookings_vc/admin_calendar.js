/**
 * The admin calendar: a booking's or session's details open in Wagtail's dialog.
 *
 * Every item on the calendar is a link to its details page, so everything works
 * without this script (and a click with a modifier key still opens a new tab). With
 * it, a click loads the same details as a fragment into the dialog; the dialog traps
 * focus, closes with Escape and gives focus back to the item.
 */
(() => {
  'use strict';

  const DIALOG_ID = 'bvc-calendar-dialog';
  let request = 0;

  const fill = (body, template) => {
    body.replaceChildren(template ? template.content.cloneNode(true) : '');
  };

  const openPanel = async (url) => {
    const dialog = document.getElementById(DIALOG_ID);
    if (!dialog) return false;
    const body = dialog.querySelector('[data-bvc-dialog-body]');
    const title = document.getElementById(`title-text-${DIALOG_ID}`);
    const subtitle = document.getElementById(`subtitle-${DIALOG_ID}`);
    const target = new URL(url, window.location.href);
    if (!target.searchParams.has('next')) {
      // Cancel and Reschedule come back to this calendar, with its filters.
      target.searchParams.set('next', window.location.pathname + window.location.search);
    }
    const current = ++request;
    fill(body, dialog.querySelector('[data-bvc-dialog-loading]'));
    if (subtitle) subtitle.textContent = '';
    dialog.dispatchEvent(new CustomEvent('w-dialog:show'));
    let html;
    try {
      const response = await fetch(target, {
        credentials: 'same-origin',
        headers: { 'X-Requested-With': 'XMLHttpRequest' },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      html = await response.text();
    } catch (error) {
      if (current === request) fill(body, dialog.querySelector('[data-bvc-dialog-error]'));
      return true;
    }
    if (current !== request) return true;
    body.innerHTML = html;
    const panel = body.querySelector('[data-bvc-panel-title]');
    if (panel) {
      if (title) title.textContent = panel.dataset.bvcPanelTitle;
      // The date and time, under the title, where Wagtail's dialogs put a subtitle.
      if (subtitle) subtitle.textContent = panel.dataset.bvcPanelSubtitle || '';
      // Screen readers start reading at the details, not at the close button.
      panel.setAttribute('tabindex', '-1');
      panel.focus({ preventScroll: true });
    }
    return true;
  };

  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-bvc-panel]');
    if (!link || event.defaultPrevented) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    openPanel(link.href).then((opened) => {
      if (!opened) window.location.assign(link.href);
    });
  });
})();
