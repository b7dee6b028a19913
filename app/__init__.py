"""FineFocus desktop app: PySide6 + pyqtgraph on a qasync loop. It only draws and takes input;
every pixel comes from the engine's tile store."""
