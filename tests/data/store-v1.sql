PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE IF NOT EXISTS "events" (
   "site" TEXT,
   "device" TEXT,
   "event_id" TEXT,
   "type" TEXT,
   "received_at" REAL,
   "payload" TEXT,
   "error" TEXT,
   "reply" TEXT,
   PRIMARY KEY ("site", "device", "event_id")
);
INSERT INTO events VALUES('demo','kiosk-1','kiosk-1-mx5i9lpkac72-1','ticket.request',1795568400.47555089,'{"v":1,"id":"kiosk-1-mx5i9lpkac72-1","ts":"2026-12-02T02:27:19.216+00:00","type":"ticket.request","service":"shebao"}',NULL,'{"v":1,"re":"kiosk-1-mx5i9lpkac72-1","ok":true,"ticket":{"no":"A001","service":"shebao","issued_at":"2026-11-25T09:00:00.475+08:00","ahead":0,"eta_min":0}}');
INSERT INTO events VALUES('demo','kiosk-1','kiosk-1-mx5i9lzzac68-1','ticket.request',1795568400.8466508388,'{"v":1,"id":"kiosk-1-mx5i9lzzac68-1","ts":"2026-12-02T02:27:19.588+00:00","type":"ticket.request","service":"shebao"}',NULL,'{"v":1,"re":"kiosk-1-mx5i9lzzac68-1","ok":true,"ticket":{"no":"A002","service":"shebao","issued_at":"2026-11-25T09:00:00.846+08:00","ahead":1,"eta_min":6}}');
INSERT INTO events VALUES('demo','kiosk-1','kiosk-1-mx5i9mco052f-1','ticket.request',1795568401.3058402538,'{"v":1,"id":"kiosk-1-mx5i9mco052f-1","ts":"2026-12-02T02:27:20.047+00:00","type":"ticket.request","service":"budongchan"}',NULL,'{"v":1,"re":"kiosk-1-mx5i9mco052f-1","ok":true,"ticket":{"no":"B001","service":"budongchan","issued_at":"2026-11-25T09:00:01.305+08:00","ahead":0,"eta_min":0}}');
CREATE TABLE IF NOT EXISTS "rejections" (
   "id" INTEGER PRIMARY KEY,
   "at" REAL,
   "site" TEXT,
   "device" TEXT,
   "topic" TEXT,
   "error" TEXT,
   "reason" TEXT,
   "payload" TEXT
);
CREATE TABLE IF NOT EXISTS "tickets" (
   "site" TEXT,
   "day" TEXT,
   "no" TEXT,
   "service" TEXT,
   "seq" INTEGER,
   "issued_at" REAL,
   "place" INTEGER,
   "priority" TEXT,
   "appointment" TEXT,
   "issued_by" TEXT,
   "phone" TEXT,
   "status" TEXT,
   "window" TEXT,
   "staff" TEXT,
   "directed_window" TEXT,
   "called_at" REAL,
   "started_at" REAL,
   "finished_at" REAL,
   "outcome" TEXT,
   "calls" INTEGER,
   "transfers" INTEGER,
   "first_called_at" REAL,
   "rating" INTEGER,
   PRIMARY KEY ("site", "day", "no")
);
INSERT INTO tickets VALUES('demo','2026-11-25','A001','shebao',1,1795568400.47555089,1,NULL,NULL,'kiosk-1',NULL,'waiting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,0,NULL,NULL);
INSERT INTO tickets VALUES('demo','2026-11-25','A002','shebao',2,1795568400.8466508388,2,NULL,NULL,'kiosk-1',NULL,'waiting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,0,NULL,NULL);
INSERT INTO tickets VALUES('demo','2026-11-25','B001','budongchan',1,1795568401.3058402538,3,NULL,NULL,'kiosk-1',NULL,'waiting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,0,NULL,NULL);
CREATE TABLE IF NOT EXISTS "windows" (
   "site" TEXT,
   "window" TEXT,
   "phase" TEXT,
   "staff" TEXT,
   "logged_in_at" REAL,
   "pause_reason" TEXT,
   "paused_at" REAL,
   "ticket" TEXT,
   "priority_streak" INTEGER,
   "served_today" INTEGER,
   "day" TEXT,
   "last_served_ticket" TEXT,
   "last_served_staff" TEXT,
   "present" INTEGER,
   PRIMARY KEY ("site", "window")
);
INSERT INTO windows VALUES('demo','w01','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w02','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w03','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w04','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w05','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w06','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w07','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w08','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w09','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
INSERT INTO windows VALUES('demo','w10','closed',NULL,NULL,NULL,NULL,NULL,0,0,'2026-11-25',NULL,NULL,NULL);
CREATE TABLE IF NOT EXISTS "ratings" (
   "id" INTEGER PRIMARY KEY,
   "site" TEXT,
   "window" TEXT,
   "device" TEXT,
   "ticket" TEXT,
   "staff" TEXT,
   "score" INTEGER,
   "at" REAL
);
CREATE TABLE IF NOT EXISTS "devices" (
   "site" TEXT,
   "device" TEXT,
   "online" INTEGER,
   "changed_at" REAL,
   "reason" TEXT,
   PRIMARY KEY ("site", "device")
);
INSERT INTO devices VALUES('demo','kiosk-1',0,1795568401.3085029124,'shutdown');
CREATE TABLE IF NOT EXISTS "device_log" (
   "id" INTEGER PRIMARY KEY,
   "site" TEXT,
   "device" TEXT,
   "online" INTEGER,
   "at" REAL,
   "reason" TEXT
);
INSERT INTO device_log VALUES(1,'demo','kiosk-1',1,1795568400.4734249114,NULL);
INSERT INTO device_log VALUES(2,'demo','kiosk-1',0,1795568400.4791629314,'shutdown');
INSERT INTO device_log VALUES(3,'demo','kiosk-1',1,1795568400.846007347,NULL);
INSERT INTO device_log VALUES(4,'demo','kiosk-1',0,1795568400.8504629135,'shutdown');
INSERT INTO device_log VALUES(5,'demo','kiosk-1',1,1795568401.3051323891,NULL);
INSERT INTO device_log VALUES(6,'demo','kiosk-1',0,1795568401.3085029124,'shutdown');
CREATE TABLE IF NOT EXISTS "alerts" (
   "id" TEXT PRIMARY KEY,
   "site" TEXT,
   "kind" TEXT,
   "severity" TEXT,
   "state" TEXT,
   "subject" TEXT,
   "window" TEXT,
   "device" TEXT,
   "staff" TEXT,
   "since" REAL,
   "until" REAL,
   "acknowledged_at" REAL,
   "acknowledged_by" TEXT,
   "note" TEXT,
   "due" REAL,
   "overdue" INTEGER,
   "detail" TEXT
);
CREATE TABLE IF NOT EXISTS "alert_log" (
   "id" INTEGER PRIMARY KEY,
   "alert_id" TEXT,
   "site" TEXT,
   "kind" TEXT,
   "state" TEXT,
   "at" REAL,
   "severity" TEXT,
   "overdue" INTEGER
);
CREATE TABLE IF NOT EXISTS "accounting" (
   "site" TEXT,
   "day" TEXT,
   "subject_kind" TEXT,
   "subject" TEXT,
   "category" TEXT,
   "seconds" REAL,
   PRIMARY KEY ("site", "day", "subject_kind", "subject", "category")
);
INSERT INTO accounting VALUES('demo','2026-11-25','device','kiosk-1','unknown',0.4542598724365234375);
INSERT INTO accounting VALUES('demo','2026-11-25','device','kiosk-1','online',0.01356410980224609375);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w01','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w02','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w03','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w04','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w05','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w06','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w07','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w08','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w09','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','window','w10','closed',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','kiosk-1','offline',0.88814210891723632812);
INSERT INTO accounting VALUES('demo','2026-11-25','device','board-1','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','selfservice-1','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w01','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w01','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w01','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w02','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w02','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w02','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w03','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w03','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w03','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w04','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w04','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w04','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w05','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w05','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w05','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w06','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w06','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w06','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w07','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w07','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w07','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w08','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w08','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w08','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w09','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w09','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w09','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','panel-w10','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','cam-w10','unknown',1.3559660911560058593);
INSERT INTO accounting VALUES('demo','2026-11-25','device','pad-w10','unknown',1.3559660911560058593);
CREATE TABLE IF NOT EXISTS "meta" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
INSERT INTO meta VALUES('schema_version','1');
CREATE INDEX "idx_events_received_at"
    ON "events" ("received_at");
CREATE INDEX "idx_tickets_site_day_status"
    ON "tickets" ("site", "day", "status");
CREATE INDEX "idx_alerts_site_state"
    ON "alerts" ("site", "state");
CREATE INDEX "idx_alerts_since"
    ON "alerts" ("since");
COMMIT;
