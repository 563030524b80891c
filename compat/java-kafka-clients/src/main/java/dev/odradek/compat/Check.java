package dev.odradek.compat;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.BooleanSupplier;

/** Assertions whose failure message becomes the scenario's reason, and bounded waiting. */
final class Check {
    private Check() {}

    /** A behaviour that differs from what the scenario expects. */
    static final class Mismatch extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Mismatch(String message) {
            super(message);
        }
    }

    static void that(boolean condition, String what) {
        if (!condition) {
            throw new Mismatch(what);
        }
    }

    static void equal(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new Mismatch(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** Byte arrays compared by content; {@code null} only equals {@code null}. */
    static void bytes(byte[] expected, byte[] actual, String what) {
        if (!Arrays.equals(expected, actual)) {
            throw new Mismatch(what + ": expected " + show(expected) + ", got " + show(actual));
        }
    }

    static String show(byte[] b) {
        if (b == null) {
            return "null";
        }
        if (b.length > 40) {
            return b.length + " bytes";
        }
        return "b\"" + new String(b, java.nio.charset.StandardCharsets.UTF_8) + "\"";
    }

    /**
     * Wait until {@code condition} holds, checking every 50 ms, for at most {@code millis}.
     * For state that Kafka makes visible eventually (metadata after an admin change, a group
     * after a rebalance); fails with {@code what} when it never holds.
     */
    static void eventually(long millis, String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new Mismatch(what + " (not within " + millis + " ms)");
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Mismatch("interrupted while waiting until " + what);
            }
        }
    }
}
