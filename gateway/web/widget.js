/*
 * Switchboard chat widget loader. A site adds one tag:
 *
 *   <script src="https://chat.example.com/widget.js" data-queue="sales" async></script>
 *
 * Optional: data-title="Chat with us", data-color="#2f5bea".
 *
 * A site whose customer is signed in passes their identity, a JWT it signs
 * with the node's [widget] identity_secret, so their chats are linked:
 * data-identity="<jwt>" on the tag, or Switchboard.identify(jwt) from the
 * page (for instance after the customer signs in); the next chat uses it.
 * Everything else (the app module, its styles, the API and the WebSocket) is
 * loaded from the origin this script came from, inside a shadow root so the
 * host page's styles and the widget's never mix.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__switchboardWidget) return;
  window.__switchboardWidget = true;

  var origin = new URL(script.src, location.href).origin;
  var identity = script.getAttribute('data-identity') || null;
  window.Switchboard = window.Switchboard || {};
  window.Switchboard.identify = function (jwt) {
    identity = jwt || null;
  };
  var options = {
    origin: origin,
    queue: script.getAttribute('data-queue') || 'default',
    title: script.getAttribute('data-title') || 'Chat with us',
    color: script.getAttribute('data-color') || '',
    identity: function () { return identity; },
  };

  function mount() {
    var host = document.createElement('div');
    host.id = 'switchboard-widget';
    host.setAttribute('data-switchboard', 'widget');
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: 'open' });
    import(origin + '/assets/js/widget-app.js')
      .then(function (app) { app.mount(root, options); })
      .catch(function (error) { console.error('Switchboard widget could not load', error); });
  }

  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
