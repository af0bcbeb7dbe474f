// Bazaar's GraphiQL boot script: queries and mutations are POSTed to
// /graphql with the headers of GraphiQL's header editor; subscriptions run
// over /graphql/ws with a minimal graphql-transport-ws client whose
// connection_init carries the Authorization header. No CDN: React and
// GraphiQL are served from /graphql/assets/.
(function () {
  'use strict';
  var endpoint = location.origin + '/graphql';
  var wsEndpoint = endpoint.replace(/^http/, 'ws') + '/ws';

  function authorization(headers) {
    for (var name in headers || {}) {
      if (name.toLowerCase() === 'authorization') return headers[name];
    }
    return undefined;
  }

  function isSubscription(params) {
    try {
      var document = GraphiQL.GraphQL.parse(params.query);
      return document.definitions.some(function (d) {
        return d.kind === 'OperationDefinition' && d.operation === 'subscription' &&
          (!params.operationName || (d.name && d.name.value === params.operationName));
      });
    } catch (e) {
      return false; // Let the server report the syntax error.
    }
  }

  // One socket per subscription, as an async iterator of results.
  function subscribe(params, headers) {
    var queue = [];
    var waiting = null;
    var finished = false;
    var socket = new WebSocket(wsEndpoint, 'graphql-transport-ws');
    function push(item) {
      if (finished) return;
      if (item.done) finished = true;
      if (waiting) {
        var resolve = waiting;
        waiting = null;
        resolve(item);
      } else {
        queue.push(item);
      }
    }
    socket.onopen = function () {
      var payload = {};
      var auth = authorization(headers);
      if (auth) payload.authorization = auth;
      socket.send(JSON.stringify({ type: 'connection_init', payload: payload }));
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: params }));
      } else if (message.type === 'next') {
        push({ value: message.payload, done: false });
      } else if (message.type === 'error') {
        push({ value: { errors: message.payload }, done: false });
        push({ value: undefined, done: true });
      } else if (message.type === 'complete') {
        push({ value: undefined, done: true });
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      }
    };
    socket.onclose = function (event) {
      if (event.code !== 1000) {
        push({ value: { errors: [{ message: 'connection closed: ' + event.code + ' ' + event.reason }] }, done: false });
      }
      push({ value: undefined, done: true });
    };
    var iterator = {
      next: function () {
        if (queue.length) return Promise.resolve(queue.shift());
        if (finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise(function (resolve) { waiting = resolve; });
      },
      return: function () {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ id: '1', type: 'complete' }));
          socket.close(1000);
        }
        push({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
    iterator[Symbol.asyncIterator] = function () { return iterator; };
    return iterator;
  }

  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    if (isSubscription(params)) return subscribe(params, headers);
    return fetch(endpoint, {
      method: 'POST',
      headers: Object.assign({ 'content-type': 'application/json' }, headers),
      body: JSON.stringify(params),
    }).then(function (response) { return response.json(); });
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultHeaders: '{\n  "Authorization": "Bearer <accessToken from the login mutation>"\n}',
    defaultQuery: '# Search the catalog (no sign-in needed).\n' +
      '{\n  search(first: 5) {\n    totalCount\n    items { id title pricing { type price { minor currency } } }\n' +
      '    facets { kinds { value count } }\n    nextCursor\n  }\n}\n',
  }));
})();
