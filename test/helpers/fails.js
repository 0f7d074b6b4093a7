"use strict";
// An assert.throws / assert.rejects validator: the error is an instance of `cls`, carries the
// given field values (option, received, path, offset, ...) and its message matches `pattern`.
const assert = require("node:assert/strict");

function fails(cls, fields, pattern) {
  return (e) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k} of: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

module.exports = { fails };
