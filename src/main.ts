import "./plain-output";
import "./db/dangling";
import { harness } from "./commands";
import { runCli } from "./commands/_main";

void runCli(harness, process.argv.slice(2));
