/** `npm run docs`: regenerates the computed tables in README.md (settings, user data sizes). */
import * as fs from "node:fs";
import * as path from "node:path";
import { withDocTables } from "./doc-tables";

const readmePath = path.join(__dirname, "..", "README.md");
const before = fs.readFileSync(readmePath, "utf8");
const after = withDocTables(before);
if (after !== before) fs.writeFileSync(readmePath, after);
console.log(after === before ? "README.md is up to date" : "README.md tables updated");
