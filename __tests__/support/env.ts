// Tests decide every setting themselves: drop any the developer's shell (direnv) exported.
import { SETTINGS } from "../../lib/settings";

for (const setting of SETTINGS) delete process.env[setting.name];
process.env.CHECKPOINT_DISABLE = "1";
