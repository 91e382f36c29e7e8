import org.opensearch.Version;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.PluginInfo;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * hack/stack's secured OpenSearch node: the real server and its real security plugin,
 * started from their published jars.
 *
 * Arguments are node settings as key=value; the security plugin's settings (TLS
 * certificates, node and admin DNs, a list each) are in HOME/config/opensearch.yml,
 * its users and roles in HOME/config/opensearch-security/, all written by hack/stack.
 * Maven Central has the server, the client artifacts of its transport-netty4 and
 * reindex modules, and the security plugin as the zip a distribution installs. With
 * no distribution there is no plugins directory to read, so the node gets the two
 * module classes and the plugin class through the constructor that takes plugins
 * from the class path (one class loader for all: the plugin's jars come first there).
 */
public final class SecureOpenSearchNode extends Node {

    private static final List<String> PLUGINS = List.of(
        "org.opensearch.transport.Netty4ModulePlugin",
        "org.opensearch.index.reindex.ReindexModulePlugin",
        "org.opensearch.security.OpenSearchSecurityPlugin"
    );

    private SecureOpenSearchNode(Environment environment, List<PluginInfo> plugins) {
        super(environment, plugins, true);
    }

    private static List<PluginInfo> plugins() {
        List<PluginInfo> plugins = new ArrayList<>();
        for (String className : PLUGINS) {
            String name = className.substring(className.lastIndexOf('.') + 1);
            plugins.add(new PluginInfo(
                name,
                "loaded from the class path",
                Version.CURRENT.toString(),
                Version.CURRENT,
                Integer.toString(Runtime.version().feature()),
                className,
                List.of(),
                false
            ));
        }
        return plugins;
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
                () -> "opensearch-secure"
            );
            LogConfigurator.configure(environment);
            Node node = new SecureOpenSearchNode(environment, plugins());
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
