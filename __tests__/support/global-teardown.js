// jest globalTeardown: fails the run when a test left a temp entry (support/temp-root.js).
"use strict";
module.exports = require("./temp-root").globalTeardown;
