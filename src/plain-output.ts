// Imported first by src/main.ts: citty colours its usage text even into pipes
// unless NO_COLOR is set before it loads.
if (!process.stdout.isTTY) process.env.NO_COLOR ??= "1";
