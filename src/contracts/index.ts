/** Every shape that crosses a process boundary. Nothing else defines these. */
export * from "./alert";
export * from "./capability";
export * from "./common";
export * from "./http";
export * from "./queue";
export * from "./task";
