// A TypeScript app using the package as npm installs it: `scripts/test` packs the client, installs
// the tarball into a scratch project and compiles this file with `tsc --strict --noEmit`, so the
// published types (`types/`, generated from the JSDoc) are held to what an app writes.
import { RequestError, WebSocketClient, type Delivery, type Gap, type Presence } from "@serverless-websocket/client";

const client = new WebSocketClient("wss://abc123.execute-api.eu-west-1.amazonaws.com/Prod", {
  token: async () => "a-jwt-from-your-backend",
  orderWaitMs: 500,
});

client.addEventListener("delivery", (event) => {
  const delivery: Delivery = event.detail;
  const where: string | undefined = delivery.channel;
  const offset: number | undefined = event.detail.offset;
  console.log(where, offset, delivery.data);
  // @ts-expect-error a delivery has no such field: the event map types `detail`
  console.log(event.detail.nonexistent);
});
client.addEventListener("gap", (event) => {
  const gap: Gap = event.detail;
  console.log(gap.channel.toUpperCase(), gap.from ?? "the whole position", gap.reason);
});
client.addEventListener("state", (event) => console.log(event.detail.state, event.detail.delayMs));
client.addEventListener("join", (event) => console.log(event.detail.user, event.detail.info));
client.addEventListener("recovered", (event) => console.log(event.detail.count, event.detail.fromHistory));
client.connect();

async function main(): Promise<void> {
  const { channel, offset, epoch } = await client.subscribe("chat/general", { joinLeave: true });
  const published = await client.publish(channel, { text: "hello" });
  const since = offset !== undefined && epoch !== undefined ? { offset, epoch } : undefined;
  const kept: Delivery[] = await client.history(channel, { limit: 10, since });
  const who: Presence = await client.presence(channel);
  try {
    await client.publish("user/bob", 1);
  } catch (err) {
    if (err instanceof RequestError) {
      console.log(err.code, err.message);
    }
  }
  console.log(published.id, kept.length, who.clients, who.members[0]?.since, client.duplicatesDropped);
  client.close();
}

void main();
