import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.reindex.ReindexPlugin;
import org.elasticsearch.transport.Netty4Plugin;

import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * hack/stack's Elasticsearch 7.17 node: the real server, started from its published jars.
 *
 * Arguments are node settings as key=value. Maven Central has the server and the
 * client artifacts of its transport-netty4 and reindex modules, but no distribution
 * with a modules directory, so the node gets those two module classes through the
 * constructor that takes plugin classes from the classpath.
 */
public final class Elasticsearch7Node extends Node {

    private Elasticsearch7Node(Environment environment) {
        super(environment, List.of(Netty4Plugin.class, ReindexPlugin.class), true);
    }

    public static void main(String[] args) {
        try {
            Settings.Builder settings = Settings.builder();
            for (String arg : args) {
                int equals = arg.indexOf('=');
                settings.put(arg.substring(0, equals), arg.substring(equals + 1));
            }
            LogConfigurator.registerErrorListener();
            Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings.build(),
                Collections.emptyMap(),
                null,
                () -> "elasticsearch7"
            );
            LogConfigurator.configure(environment);
            Node node = new Elasticsearch7Node(environment);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    node.close();
                    node.awaitClose(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    e.printStackTrace();
                }
            }));
            node.start();
            // The node's threads are daemons: as the real bootstrap's keep-alive thread
            // does, this one keeps the JVM running until SIGTERM runs the hook above.
            Thread.currentThread().join();
        } catch (Throwable e) {
            // Into the log, and a non-zero exit whatever threads a half-started node left.
            e.printStackTrace();
            System.exit(1);
        }
    }
}
