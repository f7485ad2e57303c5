// errors.js — collects the page's errors (a classic script, loaded first).
//
// Owns: window.__tickfeedErrors, an array of strings holding every uncaught
// error, unhandled promise rejection, failed resource load and console.error
// call since the page started. It runs before any module so even a module
// that fails to load is recorded. The browser tests read it to assert that
// the page loads cleanly; people can read it from the console.
(function () {
  'use strict';
  var errors = [];
  window.__tickfeedErrors = errors;
  function text(x) {
    if (x instanceof Error) return x.name + ': ' + x.message;
    try { return typeof x === 'string' ? x : JSON.stringify(x); } catch (e) { return String(x); }
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) errors.push('failed to load ' + (t.src || t.href));
    else errors.push('uncaught ' + (e.error ? text(e.error) : e.message) + ' at ' + e.filename + ':' + e.lineno);
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled rejection ' + text(e.reason));
  });
  var original = console.error;
  console.error = function () {
    errors.push('console.error ' + Array.prototype.map.call(arguments, text).join(' '));
    return original.apply(console, arguments);
  };
})();
