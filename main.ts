/**
 * The cdktf app: settings from the environment -> address plan -> stacks.
 * See README.md for every setting and what `npm run synth` writes.
 */
import { App } from "cdktf";
import { ClusterStack } from "./constructs/cluster-stack";
import { ClusterSettings, SettingsError, loadSettings } from "./lib/settings";

function settingsOrExit(): ClusterSettings {
  try {
    return loadSettings(process.env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    // A settings mistake is the user's to fix: say what and how, without a stack trace.
    console.error(`${err.message}\nNothing was synthesized. Settings are documented in README.md.`);
    process.exit(1);
  }
}

const settings = settingsOrExit();
const app = new App();
new ClusterStack(app, settings.clusterName, settings);
app.synth();
