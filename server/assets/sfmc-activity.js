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
    var data = merged.additionalData;
    field('additionalData').value = typeof data === 'string' ? data : (data ? JSON.stringify(data, null, 2) : '');
  }

  function collect() {
    var value = field('bindingValue').value.trim();
    if (!value) { return 'Give a value or data binding to find the passes.'; }
    var data = field('additionalData').value.trim();
    if (data) {
      try {
        var parsed = JSON.parse(data);
        if (typeof parsed !== 'object' || Array.isArray(parsed) || parsed === null) { return 'The data must be a JSON object.'; }
      } catch (e) { return 'The data is not valid JSON: ' + e.message; }
    }
    var args = {};
    args[field('binding').value] = value;
    if (field('passType').value.trim()) { args.passType = field('passType').value.trim(); }
    if (data) { args.additionalData = data; }
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
