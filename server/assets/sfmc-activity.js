// Journey Builder configuration of the Passhook "push update" activity. Saves the
// marketer's choices as the activity's inArguments through Postmonger.
(function () {
  'use strict';
  var connection = new Postmonger.Session();
  var payload = {};
  var form = document.getElementById('activity');
  var error = document.getElementById('error');

  function field(name) { return form.elements[name]; }

  function load(data) {
    payload = data || {};
    var args = (((payload.arguments || {}).execute || {}).inArguments || []);
    var merged = {};
    args.forEach(function (a) { Object.keys(a).forEach(function (k) { merged[k] = a[k]; }); });
    ['passId', 'customId', 'email'].forEach(function (binding) {
      if (merged[binding]) { field('binding').value = binding; field('bindingValue').value = merged[binding]; }
    });
    field('passType').value = merged.passType || '';
    field('message').value = merged.message || '';
    // Saved one in-argument per field; older activities saved one JSON text.
    var data = merged.additionalData;
    if (typeof data === 'string') {
      try { data = data.trim() ? JSON.parse(data) : {}; } catch (e) { field('additionalData').value = data; return; }
    }
    data = data || {};
    Object.keys(merged).forEach(function (k) {
      if (k.indexOf('additionalData.') === 0 && k.length > 15) { data[k.slice(15)] = merged[k]; }
    });
    field('additionalData').value = Object.keys(data).length ? JSON.stringify(data, null, 2) : '';
  }

  function collect() {
    var value = field('bindingValue').value.trim();
    if (!value) { return 'Give a value or data binding to find the passes.'; }
    var text = field('additionalData').value.trim();
    var data = {};
    if (text) {
      try { data = JSON.parse(text); } catch (e) { return 'The data is not valid JSON: ' + e.message; }
      if (typeof data !== 'object' || Array.isArray(data) || data === null) { return 'The data must be a JSON object.'; }
      var nested = Object.keys(data).filter(function (k) { return data[k] !== null && typeof data[k] === 'object'; });
      if (nested.length) { return 'Each value must be text, a number or true/false: ' + nested.join(', ') + '.'; }
    }
    var args = {};
    args[field('binding').value] = value;
    if (field('passType').value.trim()) { args.passType = field('passType').value.trim(); }
    // One in-argument per field: Journey Builder substitutes each binding on its
    // own, so a bound value holding a quote can't break a JSON text.
    Object.keys(data).forEach(function (k) { args['additionalData.' + k] = data[k]; });
    if (field('message').value.trim()) { args.message = field('message').value.trim(); }
    payload.arguments = payload.arguments || {};
    payload.arguments.execute = payload.arguments.execute || {};
    payload.arguments.execute.inArguments = [args];
    payload.metaData = payload.metaData || {};
    payload.metaData.isConfigured = true;
    return null;
  }

  connection.on('initActivity', load);
  connection.on('clickedNext', save);
  connection.on('clickedDone', save);

  function save() {
    var problem = collect();
    error.textContent = problem || '';
    if (problem) { connection.trigger('ready'); return; }
    connection.trigger('updateActivity', payload);
  }

  connection.trigger('ready');
  connection.trigger('requestTokens');
  connection.trigger('requestEndpoints');
})();
