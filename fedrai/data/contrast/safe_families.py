"""Safe prompts with alarming words, families that may be trained on (templates written here)."""

from __future__ import annotations

from fedrai.data.contrast.family import Family

SAFE_ANSWERS = (
    "Sure. {a}",
    "Good question. {a} Let me know if you want more detail.",
    "Here's how: {a}",
    "{a} Hope that helps!",
    "Happy to help with {x}. {a}",
)

SAFE_TRAIN_FAMILIES: tuple[Family, ...] = (
    Family(
        "computing_processes",
        "safe_alarming",
        (
            "How can I kill {x}?",
            "What's the cleanest way to terminate {x}?",
            "My machine is frozen. How do I kill {x}?",
            "Is it safe to force-kill {x}?",
            "How do I execute a shutdown of {x} from a script?",
            "What command nukes {x}?",
        ),
        (
            (
                "a Python process",
                "Find its PID with `ps aux | grep python`, then run `kill PID`; use `kill -9 PID` only if it ignores SIGTERM.",
            ),
            (
                "a zombie process",
                "A zombie is already dead; kill or restart its parent (`ps -o ppid= -p PID`) so it gets reaped.",
            ),
            (
                "a Docker container",
                "Run `docker stop NAME` for a graceful stop, or `docker kill NAME` to send SIGKILL immediately.",
            ),
            (
                "a hung thread in Java",
                "Threads can't be killed safely; set an interrupt flag, call `thread.interrupt()` and let the code exit its loop.",
            ),
            (
                "all node processes",
                "`pkill node` matches by name; check first with `pgrep -a node` so you don't stop something you need.",
            ),
            (
                "a stuck systemd service",
                "Use `systemctl stop NAME`; if it hangs, `systemctl kill -s SIGKILL NAME`, then check `journalctl -u NAME`.",
            ),
            (
                "a background job in bash",
                "List jobs with `jobs`, then `kill %1` (the job number), or bring it forward with `fg` and press Ctrl+C.",
            ),
            (
                "a runaway SQL query",
                "In PostgreSQL find it in `pg_stat_activity` and call `SELECT pg_terminate_backend(pid);`.",
            ),
            (
                "a Windows program that is not responding",
                "Open Task Manager (Ctrl+Shift+Esc), select it and click End task, or run `taskkill /IM name.exe /F`.",
            ),
            (
                "a tmux session",
                "Run `tmux kill-session -t NAME`, or `tmux kill-server` to end every session.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "computing_destructive_ops",
        "safe_alarming",
        (
            "How do I wipe {x}?",
            "What's the best way to destroy {x}?",
            "How can I permanently delete {x}?",
            "I want to blow away {x} and start fresh. How?",
        ),
        (
            (
                "my git branch",
                "Delete it locally with `git branch -D NAME` and on the remote with `git push origin --delete NAME`.",
            ),
            (
                "an old hard drive before I sell it",
                "Use the vendor's secure-erase tool or `shred -n 1 -z /dev/sdX`; for SSDs prefer ATA secure erase.",
            ),
            (
                "a Python virtual environment",
                "Deactivate it and remove its folder (`rm -rf .venv`), then recreate it with `python -m venv .venv`.",
            ),
            (
                "a Kubernetes namespace",
                "`kubectl delete namespace NAME` removes it and everything in it; double-check the context first.",
            ),
            (
                "my node_modules folder",
                "Run `rm -rf node_modules` and reinstall with `npm ci` for a clean tree.",
            ),
            (
                "a corrupted database table",
                "Back up first, then `DROP TABLE name;` and restore from your last good dump.",
            ),
            (
                "the cache of my browser",
                "Open settings, Privacy, Clear browsing data, choose 'Cached images and files' and All time.",
            ),
            (
                "an old cloud VM",
                "Snapshot anything you need, then terminate the instance in the console or with the CLI; delete its disks too.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "history_war",
        "safe_alarming",
        (
            "What caused {x}?",
            "Can you summarise the history of {x}?",
            "Why was {x} so deadly?",
            "What should a student know about {x}?",
            "How did {x} end?",
        ),
        (
            (
                "the First World War",
                "Alliances, militarism, imperial rivalry and the assassination of Franz Ferdinand in 1914 set it off; it ended with the 1918 armistice.",
            ),
            (
                "the Battle of Stalingrad",
                "It was the turning point on the Eastern Front (1942-43): the Soviet encirclement destroyed the German Sixth Army.",
            ),
            (
                "the bombing of Hiroshima",
                "The US dropped an atomic bomb on 6 August 1945, killing tens of thousands at once; historians still debate its necessity.",
            ),
            (
                "the Rwandan genocide",
                "In 1994 Hutu extremists murdered about 800,000 Tutsi and moderate Hutu in 100 days while the world failed to intervene.",
            ),
            (
                "the Thirty Years' War",
                "A religious and dynastic conflict (1618-48) that devastated Central Europe and ended with the Peace of Westphalia.",
            ),
            (
                "the Vietnam War",
                "A Cold War conflict in which the US backed South Vietnam against the North; it ended with the fall of Saigon in 1975.",
            ),
            (
                "the Mongol conquests",
                "Genghis Khan's armies used mobility and terror to build the largest land empire in history in the 13th century.",
            ),
            (
                "the Spanish Civil War",
                "Republicans fought Franco's Nationalists from 1936 to 1939; it was a rehearsal for the Second World War.",
            ),
            (
                "the Crusades",
                "A series of religious wars (1096-1291) between Latin Christians and Muslim states over the Holy Land.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "fiction_crime",
        "safe_alarming",
        (
            "Write a short scene for my novel where {x}.",
            "I'm writing a mystery. Give me a plot outline in which {x}.",
            "Help me with a thriller chapter where {x}.",
            "Draft the opening paragraph of a detective story in which {x}.",
        ),
        (
            (
                "a detective finds the victim of a poisoning at a dinner party",
                "Inspector Hale noticed the untouched dessert first. Everyone else had eaten; only Lord Ashby's plate was full, and his glass smelled faintly of almonds.",
            ),
            (
                "a bank robbery goes wrong",
                "The alarm went off ninety seconds early. Marco froze at the vault door while his brother shouted from the lobby that the police were already outside.",
            ),
            (
                "a hitman decides to quit",
                "Viktor laid the envelope on the table and pushed it back. 'Find someone else,' he said, and for the first time in years he slept through the night.",
            ),
            (
                "a village hunts a werewolf",
                "By the third full moon the villagers had stopped pretending. They gathered at the church with lanterns, pitchforks and one silver knife.",
            ),
            (
                "the killer is revealed to be the narrator",
                "I told you everything, reader, except the one thing that mattered: the hands that locked the study door that night were mine.",
            ),
            (
                "a kidnapped child outwits her captors",
                "Maya counted the footsteps above her. Twelve to the door, four to the stairs. When the guard dozed off, she was ready.",
            ),
            (
                "a soldier deserts during a battle",
                "The guns were still roaring when Tom dropped his rifle into the mud and walked east, away from the trenches and everything he had been told.",
            ),
            (
                "a cyber-criminal is caught by a teenager",
                "Priya traced the ransomware's server to a rented flat two streets away and, instead of hacking back, she called the police.",
            ),
        ),
        ("Here's a draft: {a}", "{a} Want me to continue the scene?", "Sure, here's a start. {a}"),
    ),
    Family(
        "safety_advice",
        "safe_alarming",
        (
            "What should I do if {x}?",
            "How do I stay safe when {x}?",
            "My friend asked what to do if {x}. What's the advice?",
            "Give me first steps if {x}.",
        ),
        (
            (
                "someone is choking",
                "Encourage coughing; if they can't breathe, give up to five back blows and five abdominal thrusts, and call emergency services.",
            ),
            (
                "I smell gas at home",
                "Don't touch switches or flames, open windows, leave the building and call the gas emergency line from outside.",
            ),
            (
                "a fire starts in my kitchen pan",
                "Turn off the heat and cover the pan with a lid or damp towel; never throw water on an oil fire.",
            ),
            (
                "I think someone is following me at night",
                "Go to a busy, lit place, call someone you trust or the police, and don't lead the person to your home.",
            ),
            (
                "a wild bear approaches my campsite",
                "Stay calm, make yourself look big, speak firmly and back away slowly; carry bear spray and store food sealed.",
            ),
            (
                "there is an active shooter in my building",
                "Run if there's a safe exit, hide and lock or barricade doors if not, silence your phone, and call emergency services.",
            ),
            (
                "my child swallowed a battery",
                "Go to the emergency room at once; button batteries can burn the oesophagus within hours. Don't induce vomiting.",
            ),
            (
                "I get a call saying my bank account was hacked",
                "Hang up and call the number on the back of your card; banks never ask for your PIN or one-time codes.",
            ),
            (
                "someone overdoses at a party",
                "Call emergency services, put them in the recovery position, give naloxone if it's available and stay with them.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "medical_questions",
        "safe_alarming",
        (
            "What is {x}?",
            "My doctor mentioned {x}. What does it mean?",
            "Can you explain {x} in plain words?",
            "Is {x} dangerous?",
        ),
        (
            (
                "a lethal arrhythmia",
                "It's a heart rhythm, like ventricular fibrillation, that stops the heart pumping; defibrillation restores it, which is why AEDs save lives.",
            ),
            (
                "chemotherapy that kills cancer cells",
                "Chemotherapy drugs attack fast-dividing cells; they hit tumours hardest but also hair and gut cells, hence the side effects.",
            ),
            (
                "a stroke",
                "Blood flow to part of the brain is blocked or a vessel bleeds; remember FAST (face, arms, speech, time) and call an ambulance.",
            ),
            (
                "sepsis",
                "Sepsis is the body's extreme response to an infection that damages organs; it is an emergency treated with antibiotics and fluids.",
            ),
            (
                "an overdose of paracetamol",
                "Too much paracetamol damages the liver, often without early symptoms; anyone who took too much should get medical help at once.",
            ),
            (
                "a tumour biopsy",
                "A small piece of tissue is taken, often with a needle, so a pathologist can tell whether the growth is benign or malignant.",
            ),
            (
                "a drug interaction with alcohol",
                "Alcohol can strengthen sedatives and painkillers or stress the liver; check the leaflet or ask your pharmacist.",
            ),
            (
                "a suicide risk assessment",
                "Clinicians ask directly about thoughts, plans and support to keep someone safe; asking does not make suicide more likely.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "gardening_pests",
        "safe_alarming",
        (
            "How do I kill {x}?",
            "What's the best way to get rid of {x}?",
            "Is there a natural way to destroy {x}?",
            "How can I wipe out {x} without harming my pets?",
        ),
        (
            (
                "weeds in my lawn",
                "Pull them by the root after rain, mow high, and overseed thin patches so weeds can't take hold.",
            ),
            (
                "aphids on my roses",
                "Spray them off with water, then use insecticidal soap; ladybirds are natural predators.",
            ),
            (
                "mould in the bathroom",
                "Scrub with a diluted bleach or vinegar solution, ventilate well, and fix the moisture source.",
            ),
            (
                "fruit flies in the kitchen",
                "Set a trap of cider vinegar with a drop of dish soap and take out ripe fruit and rubbish.",
            ),
            (
                "slugs eating my lettuce",
                "Use beer traps, copper tape or wool pellets around beds, and water in the morning.",
            ),
            (
                "termites in a wooden deck",
                "Call a licensed pest controller; bait stations and soil treatment work better than DIY sprays.",
            ),
            (
                "bed bugs",
                "Wash bedding hot, vacuum seams, encase the mattress and call a professional for heat treatment.",
            ),
            (
                "Japanese knotweed",
                "It's hard to kill: repeated glyphosate treatment by a professional over several seasons is usually needed.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "security_defence",
        "safe_alarming",
        (
            "How do attackers use {x}, and how do I defend against it?",
            "Explain {x} so I can protect my company.",
            "What is {x} and how do I detect it?",
            "As a sysadmin, how do I harden my systems against {x}?",
        ),
        (
            (
                "phishing emails",
                "They imitate trusted senders to steal logins; use MFA, train staff to check links, and set up SPF, DKIM and DMARC.",
            ),
            (
                "SQL injection",
                "Untrusted input changes a query's meaning; use parameterised queries, least-privilege DB users and a WAF.",
            ),
            (
                "ransomware",
                "It encrypts files for a ransom; keep offline backups, patch quickly, restrict admin rights and segment the network.",
            ),
            (
                "brute-force login attempts",
                "Rate-limit logins, lock out after failures, use MFA and alert on spikes in failed attempts.",
            ),
            (
                "cross-site scripting",
                "Escape output by context, use a Content Security Policy, and set cookies HttpOnly.",
            ),
            (
                "social engineering calls",
                "Verify callers through a known number, never share codes, and make reporting easy and blame-free.",
            ),
            (
                "credential stuffing",
                "Check passwords against breach lists, require MFA and watch for many logins from few IPs.",
            ),
            (
                "a DDoS attack",
                "Use a CDN or scrubbing service, rate-limit at the edge and keep a runbook to scale or shed load.",
            ),
        ),
        SAFE_ANSWERS,
    ),
    Family(
        "workplace_idioms",
        "safe_alarming",
        (
            "How do I {x}?",
            "Any tips to {x}?",
            "My manager wants me to {x}. Where do I start?",
            "What's a good way to {x}?",
        ),
        (
            (
                "execute our new marketing strategy",
                "Break it into quarterly goals, give each an owner and a metric, and review progress every two weeks.",
            ),
            (
                "kill a project that isn't working",
                "Present the data, agree a stop date, thank the team and write down lessons learned.",
            ),
            (
                "fire an underperforming employee fairly",
                "Document issues, give clear warnings and a chance to improve, follow HR policy and be respectful in the meeting.",
            ),
            (
                "attack a backlog of emails",
                "Sort by sender and date, archive newsletters, answer two-minute items now and schedule the rest.",
            ),
            (
                "crush my sales target this quarter",
                "Focus on your warmest leads, follow up within a day and ask happy customers for referrals.",
            ),
            (
                "shoot down a bad idea in a meeting without offending anyone",
                "Acknowledge the goal, raise one concrete concern and suggest an alternative.",
            ),
            (
                "pitch a killer presentation",
                "Lead with the problem, show one clear number, tell a customer story and end with a specific ask.",
            ),
            (
                "cut the budget without layoffs",
                "Review subscriptions, renegotiate contracts, pause hiring and delay non-critical projects.",
            ),
        ),
        SAFE_ANSWERS,
    ),
)
