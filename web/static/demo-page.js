// The demo page tells the bot which plan the visitor is on, as a
// customer's page would: the queue works before and after the loader runs.
window.Porthole = window.Porthole || [];
window.Porthole.push(["setSessionData", { plan: "Pro (demo)" }]);
