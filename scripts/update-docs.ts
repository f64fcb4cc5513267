/** `npm run docs`: regenerates the generated parts of README.md (the settings table). */
import * as fs from "node:fs";
import * as path from "node:path";
import { withSettingsTable } from "../lib/settings-doc";

const readmePath = path.join(__dirname, "..", "README.md");
const before = fs.readFileSync(readmePath, "utf8");
const after = withSettingsTable(before);
if (after !== before) fs.writeFileSync(readmePath, after);
console.log(after === before ? "README.md is up to date" : "README.md settings table updated");
