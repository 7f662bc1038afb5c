import { defineCommand } from "citty";

const load = <T>(m: Promise<{ default: T }>) => m.then((r) => r.default);

export default defineCommand({
  meta: { name: "jobs", description: "Create, list and control jobs" },
  subCommands: {
    apply: () => load(import("./apply.ts")),
    validate: () => load(import("./validate.ts")),
    list: () => load(import("./list.ts")),
    show: () => load(import("./show.ts")),
    enable: () => import("./toggle.ts").then((m) => m.enableCommand),
    disable: () => import("./toggle.ts").then((m) => m.disableCommand),
    delete: () => load(import("./delete.ts")),
    rename: () => load(import("./rename.ts")),
    trigger: () => load(import("./trigger.ts")),
    next: () => load(import("./next.ts")),
    pause: () => import("./pause.ts").then((m) => m.pauseCommand),
    resume: () => import("./pause.ts").then((m) => m.resumeCommand),
    backfill: () => load(import("./backfill.ts")),
  },
});
