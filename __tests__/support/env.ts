// Tests decide every setting themselves: drop any the developer's shell (direnv) exported,
// and any variable the settings' typo check would take for a misspelled setting, so that
// a test that runs the app with this process's environment is not stopped by the shell.
import { SETTINGS, findMisspelledSettings } from "../../lib/settings";

for (const setting of SETTINGS) delete process.env[setting.name];
for (const { name } of findMisspelledSettings(process.env)) delete process.env[name];
process.env.CHECKPOINT_DISABLE = "1";
