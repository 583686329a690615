"""`python -m dispatcher.check_settings`: the Procfile's `web` line runs it before granian starts.

granian imports the app in each of its worker processes and respawns one that fails, so a wrong setting would
print its error once a respawn until granian gives up on a "crash loop". Checked first, the web process stops
on one line that names the variable, and exit status 2, as the workers, Flower and the CLIs do.
"""

from dispatcher.settings import settings_or_exit

if __name__ == "__main__":
    settings_or_exit()
