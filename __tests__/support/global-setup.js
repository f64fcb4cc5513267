// jest globalSetup: the run's own temp folder (support/temp-root.js).
"use strict";
module.exports = require("./temp-root").globalSetup;
