package dev.odradek.compat;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The driver of the Java row of the compatibility matrix (see compat/SCENARIOS.md).
 *
 * <pre>
 * java -cp 'target/classes:target/lib/*' dev.odradek.compat.Main \
 *     --bootstrap 127.0.0.1:PORT --run-id RID --scenarios s1,s2,...
 * </pre>
 *
 * <p>How it works: one JVM runs the scenarios in the order given, each on a fresh worker thread
 * with a 60 s budget. Every scenario prints exactly one JSON line on stdout
 * ({@code {"scenario", "status", "reason", "seconds"}}); the client's own log lines and anything
 * else go to stderr ({@code System.out} is pointed at stderr before any client class loads). A
 * scenario that throws is a {@code fail} whose reason is the exception chain; one that overruns
 * its budget is a {@code fail} naming the step it was in, its thread is interrupted and the driver
 * goes on. The process exits 0 once every line is printed (2 on bad arguments), halting any client
 * thread a timed-out scenario left behind.
 */
public final class Main {
    /** Row name in the report, and the client part of every topic and group name. */
    static final String CLIENT = "java-kafka-clients";

    /** Upper bound of one scenario, as the contract asks. */
    static final long SCENARIO_BUDGET_MS = 60_000;

    private Main() {}

    public static void main(String[] args) throws InterruptedException {
        PrintStream results = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(System.err);

        String bootstrap = null;
        String runId = null;
        List<String> scenarios = new ArrayList<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[i + 1];
                case "--run-id" -> runId = args[i + 1];
                case "--scenarios" -> {
                    for (String s : args[i + 1].split(",")) {
                        if (!s.isBlank()) {
                            scenarios.add(s.trim());
                        }
                    }
                }
                default -> {
                    usage("unknown argument " + args[i]);
                    return;
                }
            }
        }
        if (args.length % 2 != 0 || bootstrap == null || runId == null) {
            usage("--bootstrap and --run-id are required");
            return;
        }

        Scenarios catalogue = new Scenarios(bootstrap, runId);
        try {
            for (String scenario : scenarios) {
                results.println(run(catalogue, scenario));
            }
        } finally {
            catalogue.close();
        }
        results.flush();
        System.err.flush();
        // A scenario that overran its budget may have left client threads behind.
        Runtime.getRuntime().halt(0);
    }

    private static void usage(String problem) {
        System.err.println(problem);
        System.err.println(
                "usage: Main --bootstrap HOST:PORT --run-id RID --scenarios s1,s2,...");
        System.err.flush();
        Runtime.getRuntime().halt(2);
    }

    /** Run one scenario on its own thread under the budget and return its JSON line. */
    static String run(Scenarios catalogue, String scenario) throws InterruptedException {
        Step step = new Step();
        long start = System.nanoTime();
        String status;
        String reason = "";
        ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "scenario-" + scenario);
            t.setDaemon(true);
            return t;
        });
        Future<Outcome> future = worker.submit(() -> catalogue.run(scenario, step));
        try {
            Outcome outcome = future.get(SCENARIO_BUDGET_MS, TimeUnit.MILLISECONDS);
            status = outcome.status();
            reason = outcome.reason();
        } catch (TimeoutException e) {
            future.cancel(true);
            status = "fail";
            reason = "timed out after " + SCENARIO_BUDGET_MS / 1000 + " s while " + step.get();
        } catch (ExecutionException e) {
            status = "fail";
            reason = describe(e.getCause(), step);
        } finally {
            worker.shutdownNow();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.err.printf("[%s] %s %s %s%n", CLIENT, scenario, status, reason);
        return "{\"scenario\": " + json(scenario) + ", \"status\": " + json(status)
                + ", \"reason\": " + json(reason) + ", \"seconds\": "
                + String.format(Locale.ROOT, "%.1f", seconds) + "}";
    }

    /** The reason of a failed scenario: what failed, and the step for unexpected exceptions. */
    static String describe(Throwable error, Step step) {
        if (error instanceof Check.Mismatch) {
            return error.getMessage();
        }
        StringBuilder out = new StringBuilder();
        Throwable t = error;
        while (t != null) {
            if (!(t instanceof ExecutionException)) {
                if (out.length() > 0) {
                    out.append(" <- ");
                }
                out.append(t.getClass().getSimpleName());
                if (t.getMessage() != null) {
                    out.append(": ").append(t.getMessage());
                }
            }
            t = t.getCause() == t ? null : t.getCause();
        }
        String text = out + " (while " + step.get() + ")";
        return text.length() > 800 ? text.substring(0, 800) + "..." : text;
    }

    /** A JSON string literal. */
    static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /** The status of a scenario that returned: pass, or n/a with the reason. */
    record Outcome(String status, String reason) {
        static Outcome pass() {
            return new Outcome("pass", "");
        }

        static Outcome notApplicable(String reason) {
            return new Outcome("n/a", reason);
        }
    }

    /** What a scenario is doing now, for the reason of a timeout or an unexpected exception. */
    static final class Step {
        private volatile String text = "starting";

        void set(String text) {
            this.text = text;
        }

        String get() {
            return text;
        }
    }
}
