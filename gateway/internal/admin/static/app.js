// teragate admin page: plain JavaScript, no build step, no inline code (the page's CSP forbids it).
// It is an ordinary client of the gateway's APIs; see gateway/internal/admin/doc.go.
'use strict';

(() => {
  const MODULE = 'TeraServer.UserManagerModule';
  const TOKEN_KEY = 'teragate.admin.token';
  const NAME_KEY = 'teragate.admin.name';
  const ADMINS_ONLY = 'Admins only: this page is for superadmin users.';
  const MAX_LOG = 50;
  // Rows per presence table (the first ones in connection order): 1000, or /admin?rows=N.
  const MAX_ROWS = Math.min(Math.max(parseInt(new URLSearchParams(location.search).get('rows'), 10) || 1000, 1), 100000);
  const PRESENCE_GAP = 1000; // ms: event-driven presence refreshes are at most this frequent
  const NODES_EVERY = 1000; // ms between node list polls
  const HISTORY = 5 * 60 * 1000; // ms of node history kept (and graphed)

  const $ = (id) => document.getElementById(id);

  let token = sessionStorage.getItem(TOKEN_KEY);
  let running = false;
  let timers = [];
  let ws = null;
  let wsRetry = 0;
  let wsTimer = 0;
  let presenceSeq = 0;
  let presenceTimer = 0;
  let presenceLast = 0; // when the last presence refresh started (performance.now())
  let stationsAbsent = false;
  const names = new Map(); // uuid → display name
  const errors = new Map(); // section → message

  class HTTPError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // call fetches a gateway API path and returns its decoded JSON; a non-2xx answer throws an
  // HTTPError with the server's message. credentials: 'omit' keeps the browser from prompting for
  // a password on a 401 (the Authorization header is ours).
  async function call(path, opts = {}) {
    const headers = Object.assign({}, opts.headers);
    if (token && !headers.Authorization) headers.Authorization = 'OpenTera ' + token;
    const init = { method: opts.method || 'GET', headers, credentials: 'omit', cache: 'no-store' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!resp.ok) {
      const msg = typeof data === 'string' ? data
        : (data && (data.error || data.reason || data.message)) || resp.statusText || String(resp.status);
      throw new HTTPError(resp.status, msg);
    }
    return data;
  }

  async function rpc(method) {
    const r = await call('/api/rpc/' + MODULE, { method: 'POST', body: { method } });
    return r.return_value || {};
  }

  function basic(user, pass) {
    let s = '';
    for (const b of new TextEncoder().encode(user + ':' + pass)) s += String.fromCharCode(b);
    return 'Basic ' + btoa(s);
  }

  // ---- sign-in ----

  async function signIn(ev) {
    ev.preventDefault();
    const user = $('username').value;
    const pass = $('password').value;
    $('login-error').textContent = '';
    $('login').disabled = true;
    try {
      const r = await call('/api/user/login', { headers: { Authorization: basic(user, pass) } });
      const tok = r.user_token;
      try {
        await call('/api/plugins', { headers: { Authorization: 'OpenTera ' + tok } });
      } catch (e) {
        if (e.status === 403) {
          $('login-error').textContent = ADMINS_ONLY + ' ' + (r.user_fullname || user) + ' is not one.';
          return;
        }
        throw e;
      }
      token = tok;
      sessionStorage.setItem(TOKEN_KEY, tok);
      sessionStorage.setItem(NAME_KEY, r.user_fullname || user);
      $('password').value = '';
      start();
    } catch (e) {
      $('login-error').textContent = (e.status === 401 ? 'Sign-in refused: ' : 'Sign-in failed: ') + e.message;
    } finally {
      $('login').disabled = false;
    }
  }

  async function signOut() {
    const t = token;
    stop('Signed out.');
    try {
      await call('/api/user/logout', { headers: { Authorization: 'OpenTera ' + t } });
    } catch {
      // the token is dropped from this tab either way
    }
  }

  function start() {
    running = true;
    stationsAbsent = false;
    errors.clear();
    showErrors();
    $('signin').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = false;
    $('who').textContent = 'Signed in as ' + (sessionStorage.getItem(NAME_KEY) || 'admin');
    startNodes();
    refreshPresence();
    refreshRooms();
    refreshPlugins();
    refreshStations();
    timers = [
      setInterval(refreshNodes, NODES_EVERY),
      setInterval(refreshPresence, 15000), // events drive it; this is a safety net
      setInterval(refreshRooms, 3000),
      setInterval(refreshPlugins, 3000),
      setInterval(refreshStations, 5000),
    ];
    connect();
  }

  function stop(message) {
    running = false;
    timers.forEach(clearInterval);
    timers = [];
    clearTimeout(wsTimer);
    clearTimeout(presenceTimer);
    presenceTimer = 0;
    charts = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
      ws = null;
    }
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(NAME_KEY);
    setLive(false, 'not connected');
    $('dash').hidden = true;
    $('station-editor').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('who').textContent = '';
    $('login-error').textContent = message || '';
  }

  // problem handles a failed API call of a section: a lost token or missing rights end the
  // session; anything else is shown until the section's next success.
  function problem(section, e) {
    if (!running) return;
    if (e.status === 401) {
      stop('Your session has expired or was revoked: sign in again.');
      return;
    }
    if (e.status === 403) {
      stop(ADMINS_ONLY);
      return;
    }
    errors.set(section, section + ': ' + e.message);
    showErrors();
  }

  function ok(section) {
    if (errors.delete(section)) showErrors();
    const el = $(section + '-updated');
    if (el) el.textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function showErrors() {
    $('dash-error').textContent = [...errors.values()].join(' · ');
  }

  // ---- live updates: the admin's own websocket ----

  function setLive(on, text) {
    const el = $('live');
    el.textContent = text;
    el.className = 'badge ' + (on ? 'on' : 'off');
  }

  async function connect() {
    if (!running) return;
    let url;
    try {
      url = (await call('/api/user/login?with_websocket=true')).websocket_url;
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        problem('websocket', e);
        return;
      }
      retry();
      return;
    }
    if (!running) return;
    if (!url) {
      retry();
      return;
    }
    const s = new WebSocket(url);
    ws = s;
    s.onopen = () => {
      wsRetry = 0;
      setLive(true, 'live');
      refreshPresence();
    };
    s.onmessage = (m) => onFrame(m.data);
    s.onclose = (c) => {
      if (ws !== s) return;
      ws = null;
      if (c.code === 4000) {
        stop('Signed out: the gateway closed this session (logout, or the account changed).');
        return;
      }
      retry();
    };
  }

  function retry() {
    if (!running) return;
    const delay = Math.min(15000, 1000 * 2 ** wsRetry++);
    setLive(false, 'reconnecting…');
    wsTimer = setTimeout(connect, delay);
  }

  function remember(uuid, name) {
    if (uuid && name) names.set(uuid, name);
  }

  // onFrame reads one OpenTera frame (a TeraMessage wrapping a TeraEvent), logs its events and
  // refreshes what they change.
  function onFrame(data) {
    if (typeof data !== 'string') return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    const events = (m && m.message && m.message.events) || [];
    let presence = false;
    let rooms = false;
    for (const ev of events) {
      const type = String(ev['@type'] || '').split('.').pop();
      let what = ev.type || type;
      let who = '';
      switch (type) {
        case 'UserEvent':
          remember(ev.userUuid, ev.userFullname);
          who = ev.userFullname || ev.userUuid;
          presence = true;
          break;
        case 'ParticipantEvent':
          remember(ev.participantUuid, ev.participantName);
          who = ev.participantName || ev.participantUuid;
          presence = true;
          break;
        case 'DeviceEvent':
          remember(ev.deviceUuid, ev.deviceName);
          who = ev.deviceName || names.get(ev.deviceUuid) || ev.deviceUuid;
          if (ev.deviceStatus) what += ' ' + ev.deviceStatus;
          presence = true;
          break;
        case 'JoinSessionEvent':
        case 'LeaveSessionEvent':
        case 'StopSessionEvent':
          what = type;
          who = 'session ' + ev.sessionUuid;
          presence = rooms = true;
          break;
      }
      logEvent(what, who);
    }
    if (presence) schedulePresence();
    if (rooms) refreshRooms();
  }

  function logEvent(what, who) {
    const li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + what + (who ? '  ' + who : '');
    const log = $('event-log');
    log.prepend(li);
    while (log.children.length > MAX_LOG) log.lastChild.remove();
  }

  // schedulePresence refreshes presence soon after an event: at once when the last refresh is
  // older than PRESENCE_GAP, else once at the end of the gap, however many events arrive.
  function schedulePresence() {
    if (presenceTimer) return;
    const wait = Math.max(0, presenceLast + PRESENCE_GAP - performance.now());
    presenceTimer = setTimeout(() => {
      presenceTimer = 0;
      refreshPresence();
    }, Math.max(wait, 50));
  }

  // ---- rendering helpers (textContent only: nothing from the server is parsed as HTML) ----

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fill(tbody, rows, cols, emptyText) {
    tbody.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(tr, emptyText, 'empty');
      td.colSpan = cols;
      tbody.appendChild(tr);
    }
  }

  function time(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds) || seconds <= 0) return '';
    return new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  // ---- presence ----

  async function refreshPresence() {
    if (!running) return;
    const seq = ++presenceSeq;
    presenceLast = performance.now();
    try {
      const [su, sp, sd, bu, bp, bd] = await Promise.all(
        ['status_users', 'status_participants', 'status_devices', 'busy_users', 'busy_participants', 'busy_devices'].map(rpc));
      const shown = [su, sp, sd].map((st) => Object.keys(st).slice(0, MAX_ROWS));
      const missing = shown.flat().filter((u) => !names.has(u));
      if (missing.length > 0) {
        const r = await call('/api/admin/names', { method: 'POST', body: { uuids: missing } });
        for (const [u, n] of Object.entries((r && r.names) || {})) names.set(u, n.name);
      }
      if (seq !== presenceSeq || !running) return; // a newer refresh is on its way
      people('users', su, shown[0], bu, false);
      people('participants', sp, shown[1], bp, false);
      people('devices', sd, shown[2], bd, true);
      ok('presence');
    } catch (e) {
      problem('presence', e);
    }
  }

  // people renders one presence table: the uuids in shown (sorted by name), and a last row
  // counting the ones left out.
  function people(id, status, shown, busy, devices) {
    const cols = devices ? 6 : 4;
    const uuids = [...shown].sort((a, b) =>
      (names.get(a) || a).localeCompare(names.get(b) || b) || a.localeCompare(b));
    const rows = uuids.map((u) => {
      const s = status[u] || {};
      const tr = document.createElement('tr');
      tr.dataset.uuid = u;
      cell(tr, names.get(u) || '(unknown)', 'name');
      cell(tr, u, 'mono uuid');
      cell(tr, s.online ? 'online' : 'offline', s.online ? 'online yes' : 'online');
      cell(tr, busy[u] || '', 'mono busy');
      if (devices) {
        const st = s.status;
        cell(tr, st ? st.status : '', 'mono status');
        cell(tr, st ? time(st.timestamp) : '', 'status-time');
      }
      return tr;
    });
    const more = Object.keys(status).length - shown.length;
    if (more > 0) {
      const tr = document.createElement('tr');
      const td = cell(tr, '… and ' + more + ' more (the first ' + shown.length + ' in connection order are shown)', 'empty');
      td.colSpan = cols;
      rows.push(tr);
    }
    fill($(id).tBodies[0], rows, cols, 'nobody online or busy');
  }

  // ---- nodes: the table and the live graphs (history kept in this tab only) ----

  let charts = null;
  const history = new Map(); // series name → [[time ms, connections, deliveries/s], …]
  const TOTAL = ' total'; // the history key of the totals (no node id has a space)

  function startNodes() {
    history.clear();
    charts = {
      connections: TeragateChart.create($('chart-connections'), { title: 'Connections per node and in total', span: HISTORY }),
      deliveries: TeragateChart.create($('chart-deliveries'), { title: 'Deliveries per second per node and in total', span: HISTORY }),
    };
    refreshNodes();
  }

  function duration(s) {
    if (typeof s !== 'number' || !isFinite(s) || s < 0) return '';
    s = Math.floor(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function rate(x) {
    return typeof x === 'number' && isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '';
  }

  function record(name, t, connections, deliveries) {
    let h = history.get(name);
    if (!h) history.set(name, (h = []));
    h.push([t, connections, deliveries]);
    while (h.length > 0 && h[0][0] < t - HISTORY) h.shift();
  }

  async function refreshNodes() {
    if (!running || !charts) return;
    try {
      const r = await call('/api/admin/nodes');
      if (!running) return;
      const list = (r && r.nodes) || [];
      const tot = (r && r.totals) || {};
      const now = Date.now();
      const rows = list.map((n) => {
        const tr = document.createElement('tr');
        tr.dataset.node = n.id;
        cell(tr, n.id + (n.self ? ' (this node)' : ''), 'mono id');
        cell(tr, n.addr, 'mono addr');
        cell(tr, n.up ? 'up' : 'down', n.up ? 'state yes' : 'state down');
        cell(tr, n.connections, 'num connections');
        cell(tr, rate(n.connects_per_s), 'num connects');
        cell(tr, rate(n.deliveries_per_s), 'num deliveries');
        cell(tr, duration(n.uptime_s), 'uptime');
        cell(tr, n.heartbeat_at ? new Date(n.heartbeat_at).toLocaleTimeString() : 'expired', 'heartbeat');
        if (n.up) record(n.id, now, n.connections, n.deliveries_per_s);
        return tr;
      });
      fill($('nodes-table').tBodies[0], rows, 8, 'no node has published its record yet');
      record(TOTAL, now, tot.connections || 0, tot.deliveries_per_s || 0);
      $('nodes-summary').textContent = (tot.up || 0) + ' of ' + (tot.nodes || 0) + ' node(s) up, ' +
        (tot.connections || 0) + ' connection(s), ' + rate(tot.deliveries_per_s || 0) + ' deliveries/s';
      drawNodes(now);
      ok('nodes');
    } catch (e) {
      problem('nodes', e);
    }
  }

  // drawNodes draws one series per node (that has history) and the total.
  function drawNodes(now) {
    for (const [name, h] of history) {
      if (h.length === 0 || h[h.length - 1][0] < now - HISTORY) history.delete(name);
    }
    const names = [...history.keys()].filter((n) => n !== TOTAL).sort();
    const series = (col) => [
      ...names.map((n) => ({ name: n, points: history.get(n).map((p) => [p[0], p[col]]) })),
      { name: 'total', total: true, points: (history.get(TOTAL) || []).map((p) => [p[0], p[col]]) },
    ];
    charts.connections.update(series(1), now);
    charts.deliveries.update(series(2), now);
  }

  // ---- rooms ----

  async function refreshRooms() {
    if (!running) return;
    try {
      const r = await call('/api/admin/rooms');
      const rooms = (r && r.rooms) || [];
      const states = Object.entries((r && r.states) || {}).map(([k, n]) => k + ' ' + n).join(', ');
      $('rooms-summary').textContent = rooms.length + ' room(s), ' + ((r && r.participants) || 0) +
        ' participant(s)' + (states ? ' — ' + states : '');
      const rows = rooms.map((room) => {
        const tr = document.createElement('tr');
        tr.dataset.token = room.roomToken;
        cell(tr, room.roomName || '(unnamed)', 'name');
        cell(tr, room.roomToken, 'mono');
        cell(tr, room.roomOwner);
        const ps = room.participants || [];
        cell(tr, ps.length + '/' + room.maxSize + (ps.length ? ': ' + ps.map((p) => p.displayName).join(', ') : ''));
        const ss = room.sessionState;
        const per = ss && ss.participants ? ss.participants.map((p) => p.displayName + ' ' + p.state).join(', ') : '';
        cell(tr, per, 'states');
        cell(tr, time(room.expiresAt));
        return tr;
      });
      fill($('rooms-table').tBodies[0], rows, 6, 'no rooms');
      ok('rooms');
    } catch (e) {
      problem('rooms', e);
    }
  }

  // ---- stations (a build without a station manager answers 404) ----

  let stations = new Map(); // uuid → the last station view
  let editing = ''; // uuid of the station whose role config is in the editor

  async function refreshStations() {
    if (!running || stationsAbsent) return;
    try {
      const r = await call('/api/stations');
      const list = Array.isArray(r) ? r : ((r && r.stations) || []);
      stations = new Map(list.map((s) => [s.uuid, s]));
      const rows = list.map((s) => {
        const tr = document.createElement('tr');
        tr.dataset.uuid = s.uuid;
        cell(tr, s.name || names.get(s.uuid) || '(unknown)', 'name');
        cell(tr, s.uuid, 'mono uuid');
        cell(tr, s.online ? 'online' : 'offline', s.online ? 'online yes' : 'online');
        cell(tr, [s.hostname, s.ip, s.mac].filter(Boolean).join(' · '), 'host');
        cell(tr, Object.entries(s.roles || {}).map(([role, us]) => role + ' ×' + Object.keys(us || {}).length).join(', '), 'roles');
        cell(tr, (s.running || []).map((x) => x.role + ' ' + (x.state || '')).join(', '), 'running');
        cell(tr, s.status == null ? '' : JSON.stringify(s.status), 'mono status');
        const res = s.last_result;
        cell(tr, res ? res.code + (res.message ? ': ' + res.message : '') : '', 'result');
        const td = cell(tr, '');
        const edit = document.createElement('button');
        edit.type = 'button';
        edit.className = 'edit';
        edit.textContent = 'Edit roles';
        edit.addEventListener('click', () => openEditor(s.uuid));
        td.appendChild(edit);
        return tr;
      });
      const table = $('stations-table');
      fill(table.tBodies[0], rows, 9, 'no stations yet (a station device appears when it connects or gets a config)');
      table.hidden = false;

      const roles = (r && r.roles) || [];
      const roleRows = roles.map((v) => {
        const tr = document.createElement('tr');
        tr.dataset.role = v.role;
        cell(tr, v.role, 'mono');
        const h = cell(tr, String(v.script || '').replace(/^sha256:/, '').slice(0, 12), 'mono');
        h.title = v.script || '';
        cell(tr, v.size, 'num');
        cell(tr, v.loaded_at || '');
        return tr;
      });
      fill($('station-roles-table').tBodies[0], roleRows, 4, 'no role plugins in the roles directory');
      const rejected = Object.entries((r && r.rejected) || {}).map(([role, why]) => role + ': ' + why);
      $('station-rejected').textContent = rejected.length ? 'Rejected: ' + rejected.join('; ') : '';
      $('station-roles').hidden = false;
      $('stations-note').textContent = list.length + ' station(s), ' + roles.length + ' role plugin(s)';
      ok('stations');
    } catch (e) {
      if (e.status === 404) {
        stationsAbsent = true;
        $('stations-table').hidden = true;
        $('station-roles').hidden = true;
        $('stations-note').textContent = 'No station manager in this build.';
        ok('stations');
        return;
      }
      problem('stations', e);
    }
  }

  // openEditor shows a station's role config in the form PUT takes: role → uuid → {options}.
  function openEditor(uuid) {
    const s = stations.get(uuid);
    if (!s) return;
    editing = uuid;
    const edit = {};
    for (const [role, us] of Object.entries(s.roles || {})) {
      edit[role] = {};
      for (const [u, inst] of Object.entries(us || {})) edit[role][u] = { options: (inst && inst.options) || {} };
    }
    $('station-edit-name').textContent = (s.name || uuid) + ' (' + uuid + ')';
    $('station-edit-text').value = JSON.stringify(edit, null, 2);
    $('station-edit-result').textContent = '';
    $('station-editor').hidden = false;
  }

  async function saveEditor() {
    const out = $('station-edit-result');
    let body;
    try {
      body = JSON.parse($('station-edit-text').value || '{}');
    } catch (e) {
      out.textContent = 'Not valid JSON: ' + e.message;
      return;
    }
    $('station-save').disabled = true;
    try {
      const headers = { Authorization: 'OpenTera ' + token, 'Content-Type': 'application/json' };
      const resp = await fetch('/api/stations/' + encodeURIComponent(editing) + '/roles',
        { method: 'PUT', headers, body: JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
      let data = null;
      try {
        data = await resp.json();
      } catch {
        data = null;
      }
      const res = data && data.result;
      switch (resp.status) {
        case 200:
          out.textContent = 'Pushed to the station, which accepted it.';
          break;
        case 202:
          out.textContent = 'Stored: the station is offline and gets it when it next registers.';
          break;
        case 409:
          out.textContent = 'Refused by the station (nothing changed): ' + (res ? res.code + ': ' + res.message : '');
          break;
        case 401:
        case 403:
          problem('stations', new HTTPError(resp.status, typeof data === 'string' ? data : 'refused'));
          return;
        default:
          out.textContent = 'Not saved (' + resp.status + '): ' + (typeof data === 'string' ? data : JSON.stringify(data));
      }
      refreshStations();
    } catch (e) {
      out.textContent = 'Not saved: ' + e.message;
    } finally {
      $('station-save').disabled = false;
    }
  }

  // ---- plugins ----

  async function refreshPlugins() {
    if (!running) return;
    try {
      const r = await call('/api/plugins');
      const list = (r && r.plugins) || [];
      $('plugins-dir').textContent = r && r.dir ? 'Plugin directory: ' + r.dir : 'No plugin directory watched.';
      const num = (x) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : '');
      const rows = list.map((p) => {
        const tr = document.createElement('tr');
        tr.dataset.id = p.id;
        cell(tr, p.id, 'mono id');
        cell(tr, p.kind || '');
        cell(tr, p.file || '');
        const h = cell(tr, (p.version_hash || '').slice(0, 12), 'mono hash');
        h.title = p.version_hash || '';
        cell(tr, p.loaded_at || '');
        cell(tr, p.state, 'state state-' + p.state);
        cell(tr, num(p.calls), 'num calls');
        cell(tr, num(p.failures), 'num failures');
        cell(tr, num(p.p50_us), 'num');
        cell(tr, num(p.p99_us), 'num');
        cell(tr, p.last_error || p.last_rejection || '', 'error-text');
        return tr;
      });
      fill($('plugins-table').tBodies[0], rows, 11, 'no plugins loaded (the native filter table serves)');
      ok('plugins');
    } catch (e) {
      problem('plugins', e);
    }
  }

  // ---- wiring ----

  $('login-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('station-save').addEventListener('click', saveEditor);
  $('station-cancel').addEventListener('click', () => {
    $('station-editor').hidden = true;
    editing = '';
  });
  if (token) start();
})();
